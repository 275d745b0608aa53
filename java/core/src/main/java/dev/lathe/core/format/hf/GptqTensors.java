package dev.lathe.core.format.hf;

import static dev.lathe.core.format.hf.PackedTensors.I32;
import static dev.lathe.core.format.hf.PackedTensors.checkShape;
import static dev.lathe.core.format.hf.PackedTensors.halfScale;
import static dev.lathe.core.format.hf.PackedTensors.require;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;

/**
 * Reads a Hugging Face GPTQ linear layer (AutoGPTQ / transformers, checkpoint format v1) into
 * Lathe's group-wise INT. For a projection {@code [N out, K in]} named {@code P}, with
 * {@code p = 32 / bits} levels per int32:
 * <ul>
 * <li>{@code P.qweight} I32 {@code [K / p, N]}: levels packed along K, input {@code k} of output
 *     {@code n} in word {@code [k / p, n]} at bit {@code bits * (k % p)}</li>
 * <li>{@code P.qzeros} I32 {@code [G, N / p]}: zero points packed along N the same way, stored
 *     minus one (the v1 convention: readers add 1 back, so a stored 7 is zero point 8)</li>
 * <li>{@code P.scales} F16 {@code [G, N]}</li>
 * <li>{@code P.g_idx} I32 {@code [K]}: the group of each input; {@code k / g} for plain GPTQ, a
 *     permutation of that for act-order ({@code desc_act}); absent in old checkpoints (= {@code k / g})</li>
 * </ul>
 * Value {@code W[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n])}. Contiguous
 * groups become {@link LatheFormat.Kind#INT_GROUP}; scattered ones
 * {@link LatheFormat.Kind#INT_GROUP_ACT_ORDER}, columns sorted by group (stably) and the order kept.
 */
public final class GptqTensors {
    private GptqTensors() {
    }

    /**
     * The matrix stored as {@code prefix.*} GPTQ tensors, named {@code name}, which must be {@code [rows, cols]}.
     *
     * @throws ModelFormatException naming the tensor when a shape, dtype, group index or zero point does not fit
     */
    public static WeightMatrix read(Map<String, SafetensorsFile.Tensor> all, String source, String prefix, String name,
                                    int rows, int cols, HfQuantization q, Arena arena) {
        int bits = q.bits();
        int perWord = 32 / bits;
        String shape = "a GPTQ " + bits + "-bit [" + rows + ", " + cols + "] projection";
        if (cols % perWord != 0 || rows % perWord != 0) {
            throw new ModelFormatException(source, prefix + ": " + shape + " does not pack into int32 words of " + perWord + " levels");
        }
        SafetensorsFile.Tensor qweight = require(all, source, prefix + ".qweight", "I32");
        SafetensorsFile.Tensor qzeros = require(all, source, prefix + ".qzeros", "I32");
        SafetensorsFile.Tensor scales = require(all, source, prefix + ".scales", "F16", "BF16", "F32");
        checkShape(source, qweight, shape, cols / perWord, rows);
        if (scales.shape().length != 2 || scales.shape()[0] < 1 || scales.shape()[0] > cols) {
            throw new ModelFormatException(source, "tensor '" + scales.name() + "' is " + scales.shapeString()
                    + ", expected [groups, " + rows + "] with 1 <= groups <= " + cols);
        }
        int groups = (int) scales.shape()[0];
        checkShape(source, scales, shape + " in " + groups + " groups", groups, rows);
        checkShape(source, qzeros, shape + " in " + groups + " groups", groups, rows / perWord);
        if (cols % groups != 0) {
            throw new ModelFormatException(source, prefix + ": " + groups + " groups do not divide K = " + cols);
        }
        int g = cols / groups;
        if (q.groupSize() > 0 ? g != q.groupSize() : groups != 1) {
            throw new ModelFormatException(source, prefix + ": " + groups + " groups of " + g + " inputs, but quantization_config.group_size is "
                    + q.groupSize());
        }
        int[] order = columnOrder(all, source, prefix, cols, groups, g);
        LatheFormat format = formatFor(source, prefix, bits, g, !q.symmetric(), order != null);

        int mask = (1 << bits) - 1;
        int symmetricZero = 1 << (bits - 1);
        long rowBytes = format.rowBytes(cols);
        MemorySegment data = arena.allocate(format.matrixBytes(rows, cols), 8);
        byte[] levels = new byte[cols];
        Grid[] grids = new Grid[groups];
        for (int row = 0; row < rows; row++) {
            for (int j = 0; j < cols; j++) {
                int k = order == null ? j : order[j];
                int word = qweight.data().getAtIndex(I32, (long) (k / perWord) * rows + row);
                levels[j] = (byte) ((word >>> (bits * (k % perWord))) & mask);
            }
            for (int b = 0; b < groups; b++) {
                int word = qzeros.data().getAtIndex(I32, (long) b * (rows / perWord) + row / perWord);
                int zero = ((word >>> (bits * (row % perWord))) & mask) + 1; // v1: stored minus one
                if (q.symmetric() && zero != symmetricZero) {
                    throw new ModelFormatException(source, "tensor '" + qzeros.name() + "' holds zero point " + zero + " (stored "
                            + (zero - 1) + ") for group " + b + " of output " + row + ", but quantization_config.sym is true (zero point "
                            + symmetricZero + ")");
                }
                grids[b] = new Grid(halfScale(source, scales, (long) b * rows + row), zero, mask);
            }
            LatheEncoder.packIntGroupRow(format, levels, grids, cols, data, row * rowBytes);
        }
        if (order != null) {
            LatheEncoder.packColumnOrder(format, order, rows, cols, data);
        }
        return WeightMatrices.of(name, format, rows, cols, data);
    }

    static LatheFormat formatFor(String source, String prefix, int bits, int g, boolean zeroPoint, boolean actOrder) {
        try {
            return actOrder ? LatheFormat.intGroupActOrder(bits, g, zeroPoint) : LatheFormat.intGroup(bits, g, zeroPoint);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(source, prefix + ": groups of " + g + " inputs: " + e.getMessage(), e);
        }
    }

    /**
     * The inputs sorted by group (stable), or null when {@code g_idx} is absent or is {@code k / g}
     * already. Every group must hold exactly {@code g} inputs.
     */
    private static int[] columnOrder(Map<String, SafetensorsFile.Tensor> all, String source, String prefix, int cols, int groups, int g) {
        if (!all.containsKey(prefix + ".g_idx")) {
            return null;
        }
        SafetensorsFile.Tensor gIdx = require(all, source, prefix + ".g_idx", "I32");
        checkShape(source, gIdx, "one group index per input", cols);
        int[] count = new int[groups];
        boolean contiguous = true;
        for (int k = 0; k < cols; k++) {
            int group = gIdx.data().getAtIndex(I32, k);
            if (group < 0 || group >= groups) {
                throw new ModelFormatException(source, "tensor '" + gIdx.name() + "' entry " + k + " is " + group
                        + ", outside the " + groups + " groups of '" + prefix + ".scales'");
            }
            count[group]++;
            contiguous &= group == k / g;
        }
        if (contiguous) {
            return null;
        }
        int[] start = new int[groups];
        for (int b = 0; b < groups; b++) {
            if (count[b] != g) {
                throw new ModelFormatException(source, "tensor '" + gIdx.name() + "' puts " + count[b] + " inputs in group " + b
                        + "; Lathe reads act-order checkpoints whose groups hold group_size (" + g + ") inputs each");
            }
            start[b] = b * g;
        }
        int[] order = new int[cols];
        for (int k = 0; k < cols; k++) {
            order[start[gIdx.data().getAtIndex(I32, k)]++] = k;
        }
        return order;
    }
}
