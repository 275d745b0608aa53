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
 * Reads an AWQ "GEMM" linear layer (llm-awq / AutoAWQ {@code WQLinear_GEMM}, 4 bits) into
 * Lathe's group-wise INT4. For a projection {@code [N out, K in]} named {@code P}:
 * <ul>
 * <li>{@code P.qweight} I32 {@code [K, N / 8]}: levels packed along N, eight outputs per word in
 *     AWQ's interleaved order: nibble {@code i} of word {@code [k, j]} holds output {@code 8j + ORDER[i]}</li>
 * <li>{@code P.qzeros} I32 {@code [K / g, N / 8]}: zero points packed the same way, stored as they are</li>
 * <li>{@code P.scales} F16 {@code [K / g, N]}</li>
 * </ul>
 * Value {@code W[n, k] = scales[k / g, n] * (q[k, n] - zero[k / g, n])}.
 */
public final class AwqTensors {
    /** Which output (within its word's eight) each nibble holds: the order AWQ's GEMM kernels unpack in. */
    public static final int[] ORDER = {0, 2, 4, 6, 1, 3, 5, 7};

    private AwqTensors() {
    }

    /** The nibble that holds output {@code o} (0..7) of a word: the inverse of {@link #ORDER}. */
    public static int nibbleOf(int o) {
        for (int i = 0; i < 8; i++) {
            if (ORDER[i] == o) {
                return i;
            }
        }
        throw new IllegalArgumentException("output " + o + " of a word of eight");
    }

    /** The matrix stored as {@code prefix.*} AWQ tensors, named {@code name}, which must be {@code [rows, cols]}. */
    public static WeightMatrix read(Map<String, SafetensorsFile.Tensor> all, String source, String prefix, String name,
                                    int rows, int cols, HfQuantization q, Arena arena) {
        String shape = "an AWQ 4-bit [" + rows + ", " + cols + "] projection";
        if (rows % 8 != 0) {
            throw new ModelFormatException(source, prefix + ": " + shape + " does not pack 8 outputs per int32 word");
        }
        SafetensorsFile.Tensor qweight = require(all, source, prefix + ".qweight", "I32");
        SafetensorsFile.Tensor qzeros = require(all, source, prefix + ".qzeros", "I32");
        SafetensorsFile.Tensor scales = require(all, source, prefix + ".scales", "F16", "BF16", "F32");
        checkShape(source, qweight, shape, cols, rows / 8);
        if (scales.shape().length != 2 || scales.shape()[0] < 1 || scales.shape()[0] > cols || cols % scales.shape()[0] != 0) {
            throw new ModelFormatException(source, "tensor '" + scales.name() + "' is " + scales.shapeString()
                    + ", expected [groups, " + rows + "] with groups dividing K = " + cols);
        }
        int groups = (int) scales.shape()[0];
        checkShape(source, scales, shape + " in " + groups + " groups", groups, rows);
        checkShape(source, qzeros, shape + " in " + groups + " groups", groups, rows / 8);
        int g = cols / groups;
        if (q.groupSize() > 0 ? g != q.groupSize() : groups != 1) {
            throw new ModelFormatException(source, prefix + ": " + groups + " groups of " + g + " inputs, but quantization_config "
                    + "group_size is " + q.groupSize());
        }
        LatheFormat format = GptqTensors.formatFor(source, prefix, 4, g, true, false);
        long rowBytes = format.rowBytes(cols);
        MemorySegment data = arena.allocate(format.matrixBytes(rows, cols), 8);
        byte[] levels = new byte[cols];
        Grid[] grids = new Grid[groups];
        for (int row = 0; row < rows; row++) {
            int word = row / 8;
            int shift = 4 * nibbleOf(row % 8);
            for (int k = 0; k < cols; k++) {
                levels[k] = (byte) ((qweight.data().getAtIndex(I32, (long) k * (rows / 8) + word) >>> shift) & 0xF);
            }
            for (int b = 0; b < groups; b++) {
                int zero = (qzeros.data().getAtIndex(I32, (long) b * (rows / 8) + word) >>> shift) & 0xF;
                grids[b] = new Grid(halfScale(source, scales, (long) b * rows + row), zero, 15);
            }
            LatheEncoder.packIntGroupRow(format, levels, grids, cols, data, row * rowBytes);
        }
        return WeightMatrices.of(name, format, rows, cols, data);
    }
}
