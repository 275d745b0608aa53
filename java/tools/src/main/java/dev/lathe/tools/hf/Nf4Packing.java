package dev.lathe.tools.hf;

import dev.lathe.core.format.hf.SafetensorsFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.Nf4Codebook;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * NF4 matrices as bitsandbytes serializes a {@code Linear4bit} weight {@code [N, K]} in
 * safetensors (no double quantization), and back:
 * <ul>
 * <li>{@code P.weight} uint8 {@code [N * K / 2, 1]}: the row-major codes, two per byte, the first in the high nibble</li>
 * <li>{@code P.weight.absmax} f32 {@code [N * K / blocksize]}</li>
 * <li>{@code P.weight.quant_map} f32 {@code [16]}: the NF4 code values</li>
 * <li>{@code P.weight.quant_state.bitsandbytes__nf4} uint8: JSON {@code {quant_type, blocksize, dtype, shape}}</li>
 * </ul>
 */
public final class Nf4Packing {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Nf4Packing() {
    }

    public static void write(WeightMatrix w, String prefix, SafetensorsWriter out) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.NF4) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ": bitsandbytes NF4 export needs NF4");
        }
        int n = w.rows();
        int k = w.cols();
        int g = f.groupSize();
        byte[] packed = new byte[n * k / 2];
        float[] absmax = new float[n * k / g];
        byte[] codes = new byte[k];
        float[] rowAbsmax = new float[k / g];
        for (int row = 0; row < n; row++) {
            LatheEncoder.unpackNf4Row(w, row, codes, rowAbsmax);
            System.arraycopy(rowAbsmax, 0, absmax, row * (k / g), k / g);
            for (int i = 0; i < k; i += 2) {
                packed[(row * k + i) / 2] = (byte) ((codes[i] << 4) | codes[i + 1]);
            }
        }
        String state = "{\"quant_type\":\"nf4\",\"blocksize\":" + g + ",\"dtype\":\"float16\",\"shape\":[" + n + "," + k + "]}";
        out.add(prefix + ".weight", "U8", new long[] {packed.length, 1}, packed);
        out.addFloat32(prefix + ".weight.absmax", new long[] {absmax.length}, absmax);
        out.addFloat32(prefix + ".weight.quant_map", new long[] {16}, Nf4Codebook.values());
        byte[] json = state.getBytes(StandardCharsets.UTF_8);
        out.add(prefix + ".weight.quant_state.bitsandbytes__nf4", "U8", new long[] {json.length}, json);
    }

    public static WeightMatrix read(SafetensorsFile file, String prefix, Arena arena) {
        SafetensorsFile.Tensor weight = GptqPacking.tensor(file, prefix + ".weight", "U8");
        SafetensorsFile.Tensor absmax = GptqPacking.tensor(file, prefix + ".weight.absmax", "F32");
        SafetensorsFile.Tensor map = GptqPacking.tensor(file, prefix + ".weight.quant_map", "F32");
        SafetensorsFile.Tensor stateBytes = GptqPacking.tensor(file, prefix + ".weight.quant_state.bitsandbytes__nf4", "U8");
        JsonNode state;
        try {
            state = new ObjectMapper().readTree(new String(stateBytes.data().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
        } catch (java.io.IOException e) {
            throw new ModelFormatException(file.source(), prefix + " quant_state is not JSON: " + e.getMessage(), e);
        }
        if (!"nf4".equals(state.path("quant_type").asText()) || state.has("nested_blocksize")) {
            throw new ModelFormatException(file.source(), prefix + ": only NF4 without double quantization is read, found " + state);
        }
        float[] expected = Nf4Codebook.values();
        for (int i = 0; i < 16; i++) {
            if (map.data().getAtIndex(F32, i) != expected[i]) {
                throw new ModelFormatException(file.source(), prefix + ".weight.quant_map is not the NF4 table");
            }
        }
        int n = state.path("shape").path(0).asInt();
        int k = state.path("shape").path(1).asInt();
        int g = state.path("blocksize").asInt();
        LatheFormat format;
        try {
            format = LatheFormat.nf4(g);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file.source(), prefix + ": blocksize " + g + ": " + e.getMessage(), e);
        }
        if (n <= 0 || k <= 0 || k % g != 0 || weight.data().byteSize() != (long) n * k / 2
                || absmax.data().byteSize() != (long) n * k / g * 4) {
            throw new ModelFormatException(file.source(), prefix + ": shape " + n + "x" + k + ", blocksize " + g
                    + " disagree with the stored sizes");
        }
        long rowBytes = format.rowBytes(k);
        MemorySegment data = arena.allocate(rowBytes * n, 8);
        byte[] codes = new byte[k];
        float[] rowAbsmax = new float[k / g];
        for (int row = 0; row < n; row++) {
            for (int i = 0; i < k; i += 2) {
                int b = weight.data().get(ValueLayout.JAVA_BYTE, ((long) row * k + i) / 2) & 0xFF;
                codes[i] = (byte) (b >>> 4);
                codes[i + 1] = (byte) (b & 0x0F);
            }
            for (int j = 0; j < k / g; j++) {
                rowAbsmax[j] = absmax.data().getAtIndex(F32, (long) row * (k / g) + j);
            }
            LatheEncoder.packNf4Row(format, codes, rowAbsmax, k, data, row * rowBytes);
        }
        return WeightMatrices.of(prefix + ".weight", (WeightFormat) format, n, k, data);
    }
}
