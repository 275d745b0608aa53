package dev.lathe.tools.hf;

import dev.lathe.core.format.hf.AwqTensors;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;

/**
 * Writes Lathe's INT4 group-wise matrices as AWQ "GEMM" tensors (AutoAWQ {@code WQLinear_GEMM});
 * the layout, and the reader, are {@link AwqTensors}'s. Zero points are stored as they are (no
 * v1 offset), so every grid fits; a symmetric matrix is written with its fixed zero point 8.
 */
public final class AwqPacking {
    private AwqPacking() {
    }

    /** True when {@code w} can be written by {@link #write}: plain group-wise INT4 with a multiple of 8 outputs. */
    public static boolean fits(WeightMatrix w) {
        return w.format() instanceof LatheFormat f && f.kind() == LatheFormat.Kind.INT_GROUP && f.bits() == 4 && w.rows() % 8 == 0;
    }

    public static void write(WeightMatrix w, String prefix, SafetensorsWriter out) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.INT_GROUP || f.bits() != 4) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ": AWQ export needs 4-bit group-wise INT");
        }
        int n = w.rows();
        int k = w.cols();
        int g = f.groupSize();
        int groups = k / g;
        if (n % 8 != 0) {
            throw new IllegalArgumentException(w.name() + ": AWQ packs 8 outputs per word; " + n + " outputs do not divide");
        }
        int[] qweight = new int[k * (n / 8)];
        int[] qzeros = new int[groups * (n / 8)];
        float[] scales = new float[groups * n];
        byte[] levels = new byte[k];
        Grid[] grids = new Grid[groups];
        for (int row = 0; row < n; row++) {
            LatheEncoder.unpackIntGroupRow(w, row, levels, grids);
            int word = row / 8;
            int shift = 4 * AwqTensors.nibbleOf(row % 8);
            for (int i = 0; i < k; i++) {
                qweight[i * (n / 8) + word] |= (levels[i] & 0xF) << shift;
            }
            for (int b = 0; b < groups; b++) {
                scales[b * n + row] = grids[b].scale();
                qzeros[b * (n / 8) + word] |= (grids[b].zero() & 0xF) << shift;
            }
        }
        out.addInt32(prefix + ".qweight", new long[] {k, n / 8}, qweight);
        out.addInt32(prefix + ".qzeros", new long[] {groups, n / 8}, qzeros);
        out.addFloat16(prefix + ".scales", new long[] {groups, n}, scales);
    }
}
