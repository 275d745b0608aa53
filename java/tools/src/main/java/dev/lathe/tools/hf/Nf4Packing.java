package dev.lathe.tools.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.format.hf.BnbNf4Tensors;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.Nf4Codebook;
import dev.lathe.core.tensor.WeightMatrix;

import java.nio.charset.StandardCharsets;

/**
 * Writes Lathe's NF4 matrices as bitsandbytes serializes a 4-bit {@code Linear4bit} weight in
 * safetensors (transformers' {@code save_pretrained}); the layout, and the reader, are
 * {@link BnbNf4Tensors}'s. Double-quant NF4 is written as bitsandbytes' nested quant state with
 * {@code nested_blocksize} 256 and a {@code nested_quant_map} that maps byte {@code u} to the
 * signed value {@code (byte) u}: Lathe's linear int8 absmax codes, so that bitsandbytes' formula
 * {@code map[code] * nested_absmax[block] + offset} computes exactly Lathe's absmax (the same two
 * f32 operations), except that Lathe clamps a negative absmax to 0.
 */
public final class Nf4Packing {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Nf4Packing() {
    }

    public static boolean fits(WeightMatrix w) {
        return w.format() instanceof LatheFormat f && f.kind() == LatheFormat.Kind.NF4;
    }

    public static void write(WeightMatrix w, String prefix, SafetensorsWriter out) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.NF4) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ": bitsandbytes NF4 export needs NF4");
        }
        int n = w.rows();
        int k = w.cols();
        int g = f.groupSize();
        int groups = n * k / g;
        byte[] packed = new byte[n * k / 2];
        float[] absmax = new float[groups];
        byte[] codes = new byte[k];
        float[] rowAbsmax = new float[k / g];
        for (int row = 0; row < n; row++) {
            LatheEncoder.unpackNf4Row(w, row, codes, rowAbsmax);
            System.arraycopy(rowAbsmax, 0, absmax, row * (k / g), k / g);
            for (int i = 0; i < k; i += 2) {
                packed[(row * k + i) / 2] = (byte) ((codes[i] << 4) | codes[i + 1]);
            }
        }
        ObjectNode state = JSON.createObjectNode();
        state.put("quant_type", "nf4");
        state.put("blocksize", g);
        state.put("dtype", "float16");
        state.putArray("shape").add(n).add(k);
        String weight = prefix + ".weight";
        out.add(weight, "U8", new long[] {n * k / 2, 1}, packed);
        if (f.doubleQuant()) {
            LatheEncoder.AbsmaxCodes dq = LatheEncoder.absmaxCodes(w);
            out.add(weight + ".absmax", "U8", new long[] {groups}, dq.codes());
            out.addFloat32(weight + ".nested_absmax", new long[] {dq.blockScales().length}, dq.blockScales());
            float[] linear = new float[256];
            for (int u = 0; u < 256; u++) {
                linear[u] = (byte) u;
            }
            out.addFloat32(weight + ".nested_quant_map", new long[] {256}, linear);
            state.put("nested_blocksize", LatheFormat.DQ_BLOCK);
            state.put("nested_dtype", "float32");
            state.put("nested_offset", (double) dq.offset());
        } else {
            out.addFloat32(weight + ".absmax", new long[] {groups}, absmax);
        }
        out.addFloat32(weight + ".quant_map", new long[] {16}, Nf4Codebook.values());
        byte[] stateBytes = state.toString().getBytes(StandardCharsets.UTF_8);
        out.add(prefix + BnbNf4Tensors.STATE_PREFIX + "nf4", "U8", new long[] {stateBytes.length}, stateBytes);
    }
}
