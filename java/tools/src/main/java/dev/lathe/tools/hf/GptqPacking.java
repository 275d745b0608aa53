package dev.lathe.tools.hf;

import dev.lathe.core.format.hf.GptqTensors;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;

/**
 * Writes Lathe's group-wise INT matrices as Hugging Face GPTQ tensors (AutoGPTQ / transformers
 * "gptq", checkpoint format v1); the layout, and the reader, are {@link GptqTensors}'s.
 * Act-order matrices ({@link LatheFormat.Kind#INT_GROUP_ACT_ORDER}) are written in input order
 * with their scattered {@code g_idx}; plain ones with {@code g_idx[k] = k / g}.
 */
// NOTE: the v1 convention stores zero - 1 in an unsigned field, so a group whose zero point is 0
// (all its values >= 0 under an asymmetric grid) cannot be written: it is refused, naming the
// group, rather than wrapped to 15 as AutoGPTQ's own packer would do. 3-bit GPTQ packs levels
// across word boundaries; only 2 and 4 bits are written (INT3 stays in Lathe's GGUF container).
public final class GptqPacking {
    private GptqPacking() {
    }

    /** True when {@code w} can be written by {@link #write}: group-wise INT of 2 or 4 bits whose rows and columns pack into words. */
    public static boolean fits(WeightMatrix w) {
        return w.format() instanceof LatheFormat f
                && (f.kind() == LatheFormat.Kind.INT_GROUP || f.kind() == LatheFormat.Kind.INT_GROUP_ACT_ORDER)
                && 32 % f.bits() == 0 && w.rows() % (32 / f.bits()) == 0 && w.cols() % (32 / f.bits()) == 0;
    }

    /** Adds {@code prefix.qweight/qzeros/scales/g_idx} for the group-wise INT matrix {@code w} to {@code out}. */
    public static void write(WeightMatrix w, String prefix, SafetensorsWriter out) {
        if (!(w.format() instanceof LatheFormat f)
                || (f.kind() != LatheFormat.Kind.INT_GROUP && f.kind() != LatheFormat.Kind.INT_GROUP_ACT_ORDER)) {
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
        if (n % perWord != 0 || k % perWord != 0) {
            throw new IllegalArgumentException(w.name() + ": GPTQ packs " + perWord + " levels per word; [" + n + ", " + k
                    + "] does not divide");
        }
        int[] order = LatheEncoder.columnOrder(w); // input column of each stored column
        int[] qweight = new int[k / perWord * n];
        int[] qzeros = new int[groups * (n / perWord)];
        float[] scales = new float[groups * n];
        byte[] levels = new byte[k];
        Grid[] grids = new Grid[groups];
        int mask = (1 << bits) - 1;
        for (int row = 0; row < n; row++) {
            LatheEncoder.unpackIntGroupRow(w, row, levels, grids);
            for (int j = 0; j < k; j++) {
                int i = order[j];
                qweight[(i / perWord) * n + row] |= (levels[j] & mask) << (bits * (i % perWord));
            }
            for (int b = 0; b < groups; b++) {
                scales[b * n + row] = grids[b].scale();
                if (grids[b].zero() == 0) {
                    throw new IllegalArgumentException(w.name() + " row " + row + " group " + b + " has zero point 0, which the "
                            + "GPTQ v1 format cannot store (it keeps zero - 1 unsigned and readers add 1 back); quantize with --sym");
                }
                qzeros[b * (n / perWord) + row / perWord] |= (grids[b].zero() - 1) << (bits * (row % perWord));
            }
        }
        int[] gIdx = new int[k];
        for (int j = 0; j < k; j++) {
            gIdx[order[j]] = j / g;
        }
        out.addInt32(prefix + ".qweight", new long[] {k / perWord, n}, qweight);
        out.addInt32(prefix + ".qzeros", new long[] {groups, n / perWord}, qzeros);
        out.addFloat16(prefix + ".scales", new long[] {groups, n}, scales);
        out.addInt32(prefix + ".g_idx", new long[] {k}, gIdx);
    }
}
