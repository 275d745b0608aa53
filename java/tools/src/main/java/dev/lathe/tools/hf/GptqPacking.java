package dev.lathe.tools.hf;

import dev.lathe.core.format.hf.SafetensorsFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Group-wise INT matrices as Hugging Face GPTQ tensors (AutoGPTQ / transformers "gptq", checkpoint
 * format v1) and back. For a linear layer {@code [N out, K in]} named {@code P}:
 * <ul>
 * <li>{@code P.qweight} int32 {@code [K * bits / 32, N]}: levels packed along K, element
 *     {@code k} of column {@code n} in word {@code k / (32 / bits)} at bit {@code bits * (k % (32 / bits))}</li>
 * <li>{@code P.qzeros} int32 {@code [K / g, N * bits / 32]}: zero points packed along N the same way,
 *     stored minus one (the v1 convention readers add back)</li>
 * <li>{@code P.scales} f16 {@code [K / g, N]}</li>
 * <li>{@code P.g_idx} int32 {@code [K]}: group of each input, {@code k / g} (our groups are contiguous)</li>
 * </ul>
 * config.json carries {@code quantization_config = {quant_method: gptq, bits, group_size, desc_act: false, sym}}.
 */
// NOTE: 3-bit GPTQ packs levels across word boundaries; only 2 and 4 bits are exported here (INT3
// stays in Lathe's own GGUF container).
public final class GptqPacking {
    private GptqPacking() {
    }

    /** Adds {@code prefix.qweight/qzeros/scales/g_idx} for the group-wise INT matrix {@code w} to {@code out}. */
    public static void write(WeightMatrix w, String prefix, SafetensorsWriter out) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.INT_GROUP) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ": GPTQ export needs group-wise INT");
        }
        int bits = f.bits();
        if (32 % bits != 0) {
            throw new IllegalArgumentException(w.name() + ": GPTQ export supports 2 and 4 bits, not " + bits);
        }
        int perWord = 32 / bits;
        int n = w.rows();
        int k = w.cols();
        int g = f.groupSize();
        int groups = k / g;
        if (n % perWord != 0) {
            throw new IllegalArgumentException(w.name() + ": GPTQ packs zero points of " + perWord + " outputs per word; "
                    + n + " outputs do not divide");
        }
        int[] qweight = new int[k / perWord * n];
        int[] qzeros = new int[groups * (n / perWord)];
        float[] scales = new float[groups * n];
        byte[] levels = new byte[k];
        Grid[] grids = new Grid[groups];
        for (int row = 0; row < n; row++) {
            LatheEncoder.unpackIntGroupRow(w, row, levels, grids);
            for (int i = 0; i < k; i++) {
                qweight[(i / perWord) * n + row] |= (levels[i] & ((1 << bits) - 1)) << (bits * (i % perWord));
            }
            for (int b = 0; b < groups; b++) {
                scales[b * n + row] = grids[b].scale();
                if (grids[b].zero() == 0) {
                    throw new IllegalArgumentException(w.name() + " row " + row + " group " + b + " has zero point 0, which the "
                            + "GPTQ v1 format cannot store (it keeps zero - 1 unsigned and readers add 1 back)");
                }
                int stored = grids[b].zero() - 1;
                qzeros[b * (n / perWord) + row / perWord] |= stored << (bits * (row % perWord));
            }
        }
        int[] gIdx = new int[k];
        for (int i = 0; i < k; i++) {
            gIdx[i] = i / g;
        }
        out.addInt32(prefix + ".qweight", new long[] {k / perWord, n}, qweight);
        out.addInt32(prefix + ".qzeros", new long[] {groups, n / perWord}, qzeros);
        out.addFloat16(prefix + ".scales", new long[] {groups, n}, scales);
        out.addInt32(prefix + ".g_idx", new long[] {k}, gIdx);
    }

    /** The matrix stored as {@code prefix.*} GPTQ tensors in {@code file}, in Lathe's group-wise INT layout. */
    public static WeightMatrix read(SafetensorsFile file, String prefix, int bits, boolean symmetric, Arena arena) {
        SafetensorsFile.Tensor qweight = tensor(file, prefix + ".qweight", "I32");
        SafetensorsFile.Tensor qzeros = tensor(file, prefix + ".qzeros", "I32");
        SafetensorsFile.Tensor scales = tensor(file, prefix + ".scales", "F16");
        SafetensorsFile.Tensor gIdx = tensor(file, prefix + ".g_idx", "I32");
        int perWord = 32 / bits;
        int n = (int) qweight.shape()[1];
        int k = (int) qweight.shape()[0] * perWord;
        int groups = (int) scales.shape()[0];
        if (groups == 0 || k % groups != 0 || scales.shape()[1] != n || qzeros.shape()[0] != groups
                || qzeros.shape()[1] * perWord != n || gIdx.shape()[0] != k) {
            throw new ModelFormatException(file.source(), prefix + ": GPTQ tensor shapes do not agree (qweight "
                    + qweight.shapeString() + ", qzeros " + qzeros.shapeString() + ", scales " + scales.shapeString() + ")");
        }
        int g = k / groups;
        for (int i = 0; i < k; i++) {
            if (gIdx.data().getAtIndex(I32, i) != i / g) {
                throw new ModelFormatException(file.source(), prefix + ".g_idx is not contiguous groups (act-order permutation): "
                        + "Lathe reads only g_idx[k] = k / group_size");
            }
        }
        LatheFormat format = LatheFormat.intGroup(bits, g, !symmetric);
        long rowBytes = format.rowBytes(k);
        MemorySegment data = arena.allocate(rowBytes * n, 8);
        byte[] levels = new byte[k];
        Grid[] grids = new Grid[groups];
        int mask = (1 << bits) - 1;
        for (int row = 0; row < n; row++) {
            for (int i = 0; i < k; i++) {
                levels[i] = (byte) ((qweight.data().getAtIndex(I32, (long) (i / perWord) * n + row) >>> (bits * (i % perWord))) & mask);
            }
            for (int b = 0; b < groups; b++) {
                int word = qzeros.data().getAtIndex(I32, (long) b * (n / perWord) + row / perWord);
                int zero = ((word >>> (bits * (row % perWord))) & mask) + 1; // v1: stored minus one
                float scale = Float.float16ToFloat(scales.data().getAtIndex(F16, (long) b * n + row));
                grids[b] = new Grid(scale, zero, mask);
            }
            LatheEncoder.packIntGroupRow(format, levels, grids, k, data, row * rowBytes);
        }
        return WeightMatrices.of(prefix + ".weight", (dev.lathe.core.tensor.WeightFormat) format, n, k, data);
    }

    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static SafetensorsFile.Tensor tensor(SafetensorsFile file, String name, String dtype) {
        SafetensorsFile.Tensor t = file.tensors().get(name);
        if (t == null) {
            throw new ModelFormatException(file.source(), "tensor " + name + " is missing");
        }
        if (!t.dtype().equals(dtype)) {
            throw new ModelFormatException(file.source(), name + " is " + t.dtype() + ", expected " + dtype);
        }
        return t;
    }
}
