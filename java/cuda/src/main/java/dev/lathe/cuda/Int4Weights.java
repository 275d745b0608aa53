package dev.lathe.cuda;

import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;

/**
 * A group-wise INT4 weight (W4A16, the GPTQ / AWQ model) in the kernel layout of
 * kernels/quant/int4_gemv.cuh: {@code W[r, i] = (q[r, i] - zero[r, i / group]) * scale[r, i / group]}.
 *
 * @param rows    output features (N)
 * @param cols    input features (K), a multiple of {@code group}
 * @param group   values per scale and zero along K: 32, 64 or 128
 * @param qweight {@code [rows, cols/8]}: word j of a row holds values 8j .. 8j+7, value 8j+n in bits 4n .. 4n+3
 * @param scales  {@code [rows, cols/group]} f16 bits
 * @param zeros   {@code [rows, cols/group]} zero points 0..15
 */
public record Int4Weights(int rows, int cols, int group, int[] qweight, short[] scales, byte[] zeros) {

    public Int4Weights {
        if (group != 32 && group != 64 && group != 128) {
            throw new IllegalArgumentException("INT4 group must be 32, 64 or 128, got " + group);
        }
        if (rows < 1 || cols < group || cols % group != 0) {
            throw new IllegalArgumentException("INT4 weight [" + rows + ", " + cols + "] needs cols a positive multiple of "
                    + group);
        }
        int groups = rows * (cols / group);
        if (qweight.length != rows * (cols / 8) || scales.length != groups || zeros.length != groups) {
            throw new IllegalArgumentException("INT4 arrays do not match [" + rows + ", " + cols + "] with group " + group);
        }
    }

    /** W[r, i] as the kernel computes it. */
    public float value(int r, int i) {
        int q = (qweight[r * (cols / 8) + i / 8] >>> (4 * (i % 8))) & 0xF;
        int g = r * (cols / group) + i / group;
        return (q - zeros[g]) * Float.float16ToFloat(scales[g]);
    }

    /**
     * Round-to-nearest asymmetric quantization of {@code w [rows, cols]} (row-major), per group:
     * the group's range [min, max] (widened to hold 0) maps onto 0..15; the scale is stored as f16
     * and the codes are computed against that stored scale.
     */
    public static Int4Weights quantize(float[] w, int rows, int cols, int group) {
        int groupsPerRow = cols / group;
        int[] qweight = new int[rows * (cols / 8)];
        short[] scales = new short[rows * groupsPerRow];
        byte[] zeros = new byte[rows * groupsPerRow];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < groupsPerRow; g++) {
                float min = 0;
                float max = 0;
                for (int i = g * group; i < (g + 1) * group; i++) {
                    min = Math.min(min, w[r * cols + i]);
                    max = Math.max(max, w[r * cols + i]);
                }
                short scaleBits = Float.floatToFloat16(max > min ? (max - min) / 15 : 1f);
                float scale = Float.float16ToFloat(scaleBits);
                int zero = Math.clamp(Math.round(-min / scale), 0, 15);
                scales[r * groupsPerRow + g] = scaleBits;
                zeros[r * groupsPerRow + g] = (byte) zero;
                for (int i = g * group; i < (g + 1) * group; i++) {
                    int q = Math.clamp(Math.round(w[r * cols + i] / scale) + zero, 0, 15);
                    qweight[r * (cols / 8) + i / 8] |= q << (4 * (i % 8));
                }
            }
        }
        return new Int4Weights(rows, cols, group, qweight, scales, zeros);
    }

    /**
     * Whether a model file's weight in {@code format} has this layout's exact values: group-wise
     * INT4, INT3 or INT2 (fewer levels in the same nibbles) in groups of 32, 64 or 128.
     */
    static boolean holds(LatheFormat format) {
        int g = format.groupSize();
        return format.kind() == LatheFormat.Kind.INT_GROUP && (g == 32 || g == 64 || g == 128);
    }

    /**
     * A group-wise INT matrix of a model file ({@link #holds} its format) in the kernel layout,
     * values unchanged: the file's groups hold an f16 scale, a zero point and nibbles split in
     * halves (level i low, level i + group/2 high); here each row's nibbles run in order.
     */
    static Int4Weights of(WeightMatrix w) {
        if (!(w.format() instanceof LatheFormat f) || !holds(f)) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name()
                    + ", not group-wise INT in groups of 32, 64 or 128");
        }
        int rows = w.rows();
        int cols = w.cols();
        int group = f.groupSize();
        int groupsPerRow = cols / group;
        int[] qweight = new int[rows * (cols / 8)];
        short[] scales = new short[rows * groupsPerRow];
        byte[] zeros = new byte[rows * groupsPerRow];
        byte[] levels = new byte[cols];
        LatheEncoder.Grid[] grids = new LatheEncoder.Grid[groupsPerRow];
        for (int r = 0; r < rows; r++) {
            LatheEncoder.unpackIntGroupRow(w, r, levels, grids);
            for (int g = 0; g < groupsPerRow; g++) {
                scales[r * groupsPerRow + g] = Float.floatToFloat16(grids[g].scale());  // the file's f16, exact
                zeros[r * groupsPerRow + g] = (byte) grids[g].zero();
            }
            Nf4Weights.packNibbles(levels, qweight, r * (cols / 8));
        }
        return new Int4Weights(rows, cols, group, qweight, scales, zeros);
    }

    /**
     * Repacks GPTQ's tensors (AutoGPTQ / Hugging Face layout, K = cols input features, N = rows):
     * {@code qweight} int32 {@code [K/8, N]} (word [j, n] holds rows 8j .. 8j+7 of column n, low
     * nibble first), {@code qzeros} int32 {@code [K/group, N/8]} (word [g, m] holds the zeros of
     * columns 8m .. 8m+7), {@code scales} f16 {@code [K/group, N]}. {@code zerosStoredMinusOne}:
     * the original GPTQ format stores zero - 1 (its kernels add 1 back); the "v2" format does not.
     */
    public static Int4Weights fromGptq(int[] gptqQweight, int[] gptqQzeros, short[] gptqScales, int rows, int cols,
                                       int group, boolean zerosStoredMinusOne) {
        int groupsPerRow = cols / group;
        if (gptqQweight.length != (cols / 8) * rows || gptqQzeros.length != groupsPerRow * (rows / 8)
                || gptqScales.length != groupsPerRow * rows || rows % 8 != 0) {
            throw new IllegalArgumentException("GPTQ tensors do not match K=" + cols + ", N=" + rows + ", group " + group
                    + " (qweight [K/8, N], qzeros [K/group, N/8], scales [K/group, N]; N a multiple of 8)");
        }
        int[] qweight = new int[rows * (cols / 8)];
        short[] scales = new short[rows * groupsPerRow];
        byte[] zeros = new byte[rows * groupsPerRow];
        for (int j = 0; j < cols / 8; j++) {
            for (int n = 0; n < rows; n++) {
                // Same 8 values of K, same nibble order: the word only moves from [j, n] to [n, j].
                qweight[n * (cols / 8) + j] = gptqQweight[j * rows + n];
            }
        }
        for (int g = 0; g < groupsPerRow; g++) {
            for (int n = 0; n < rows; n++) {
                scales[n * groupsPerRow + g] = gptqScales[g * rows + n];
                int z = (gptqQzeros[g * (rows / 8) + n / 8] >>> (4 * (n % 8))) & 0xF;
                zeros[n * groupsPerRow + g] = (byte) Math.min(15, zerosStoredMinusOne ? z + 1 : z);
            }
        }
        return new Int4Weights(rows, cols, group, qweight, scales, zeros);
    }
}
