package dev.lathe.tools.prune;

import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.tools.quant.Gptq;

import java.util.Arrays;

/**
 * One-shot pruning of one linear layer {@code W [rows, K]}, row-major, to a {@link SparsityTarget}:
 * <ul>
 * <li>magnitude: score {@code |w_ij|};</li>
 * <li>Wanda (Sun et al., 2023): score {@code |w_ij| * ||x_j||_2} over the calibration inputs,
 *     compared within each output row (or N:M group);</li>
 * <li>SparseGPT (Frantar and Alistarh, 2023): blocks of columns; in each, the mask is chosen by
 *     the OBS saliency {@code w^2 / [H^-1]_jj^2} and every pruned (and, with a format, quantized)
 *     column's error is spread over the columns not yet visited through the inverse Hessian's
 *     upper Cholesky factor, as GPTQ does (and with GPTQ's factor: {@link Gptq#inverseCholeskyUpper}).</li>
 * </ul>
 * Masks are per output row: every row loses {@code round(K * sparsity)} weights (N:M: {@code m - n}
 * of every group), so the requested sparsity holds in every row, not just on average.
 */
// NOTE: SparseGPT's reference picks an unstructured block mask over all rows of the block at once;
// here each row prunes its own share of each block (cumulatively rounded, so a row's total is
// exactly round(K * sparsity)), which keeps every row at the requested sparsity and every row
// independent, as the magnitude and Wanda rules.
public final class WeightPruning {
    private static final int BLOCK = 128;

    private WeightPruning() {
    }

    /** Magnitude pruning of {@code w [rows, cols]} in place. */
    public static void magnitude(float[] w, int rows, int cols, SparsityTarget target) {
        float[] score = new float[cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                score[j] = Math.abs(w[r * cols + j]);
            }
            pruneRow(w, r * cols, score, cols, target);
        }
    }

    /** Wanda pruning of {@code w [rows, cols]} in place; {@code inputSquares[j] = sum_t x_tj^2} (the Hessian's diagonal). */
    public static void wanda(float[] w, int rows, int cols, double[] inputSquares, SparsityTarget target) {
        float[] norm = new float[cols];
        for (int j = 0; j < cols; j++) {
            norm[j] = (float) Math.sqrt(inputSquares[j]);
        }
        float[] score = new float[cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                score[j] = Math.abs(w[r * cols + j]) * norm[j];
            }
            pruneRow(w, r * cols, score, cols, target);
        }
    }

    /** Zeroes, in the row at {@code w[offset..]}, the weights with the lowest {@code score}s that {@code target} asks for. */
    private static void pruneRow(float[] w, int offset, float[] score, int cols, SparsityTarget target) {
        if (target.isPattern()) {
            for (int g = 0; g < cols; g += target.m()) {
                zeroLowest(w, offset + g, score, g, target.m(), target.m() - target.n());
            }
        } else {
            zeroLowest(w, offset, score, 0, cols, target.prunedUpTo(cols));
        }
    }

    /** Zeroes the {@code k} weights {@code w[wOffset + i]}, {@code i < count}, with the lowest {@code score[sOffset + i]} (ties: the earlier). */
    static void zeroLowest(float[] w, int wOffset, float[] score, int sOffset, int count, int k) {
        if (k <= 0) {
            return;
        }
        Integer[] order = new Integer[count];
        for (int i = 0; i < count; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(score[sOffset + a], score[sOffset + b]));
        for (int i = 0; i < k; i++) {
            w[wOffset + order[i]] = 0;
        }
    }

    /**
     * A SparseGPT result: the pruned (and quantized) weights {@code [rows, cols]}, and with a
     * quantization format the grids {@code [rows * cols / groupSize]} the kept values lie on.
     */
    public record Result(float[] values, Grid[] grids) {
    }

    /**
     * SparseGPT on {@code weights [rows, cols]} (not modified).
     *
     * @param hessian   {@code [cols, cols]} row-major {@code sum x x^T} of the calibration inputs (modified)
     * @param quantize  null, or a group-wise INT format ({@link LatheFormat.Kind#INT_GROUP} or
     *                  {@link LatheFormat.Kind#SPARSE24_INT}) whose grids the kept values are rounded to
     *                  in the same pass (grids fitted per group of columns when the walk reaches it)
     * @param dampening fraction of the Hessian's mean diagonal added before factoring (0.01)
     */
    public static Result sparseGpt(float[] weights, int rows, int cols, double[] hessian, SparsityTarget target,
                                   LatheFormat quantize, double dampening) {
        int group = quantize == null ? 0 : quantize.groupSize();
        if (quantize != null && (cols % group != 0 || quantize.bits() != 4
                || !(quantize.kind() == LatheFormat.Kind.INT_GROUP || quantize.kind() == LatheFormat.Kind.SPARSE24_INT))) {
            throw new IllegalArgumentException("SparseGPT quantizes to INT4 group-wise with K a multiple of the group: " + quantize
                    + ", K " + cols);
        }
        double[] pw = new double[rows * cols]; // [rows, cols] the weights as updated
        for (int i = 0; i < pw.length; i++) {
            pw[i] = weights[i];
        }
        for (int j = 0; j < cols; j++) { // dead inputs: any weight there is free to go
            if (hessian[j * cols + j] == 0) {
                hessian[j * cols + j] = 1;
                for (int r = 0; r < rows; r++) {
                    pw[r * cols + j] = 0;
                }
            }
        }
        double[] upper = Gptq.inverseCholeskyUpper(hessian, cols, dampening);
        int groups = group == 0 ? 0 : cols / group;
        Grid[] grids = group == 0 ? null : new Grid[rows * groups];
        float[] out = new float[rows * cols];
        // NOTE: an N:M group never straddles two blocks (its scores would miss the lazy update).
        int block = target.isPattern() ? BLOCK / target.m() * target.m() : BLOCK;
        boolean[] pruned = new boolean[rows * block];
        double[] err = new double[rows * block];
        float[] score = new float[Math.max(cols, 1)];
        float[] marks = new float[Math.max(cols, 1)];
        for (int i1 = 0; i1 < cols; i1 += block) {
            int i2 = Math.min(cols, i1 + block);
            int count = i2 - i1;
            Arrays.fill(pruned, false);
            if (!target.isPattern()) {
                int k = target.prunedUpTo(i2) - target.prunedUpTo(i1);
                for (int r = 0; r < rows; r++) {
                    markLowest(pw, r * cols + i1, upper, cols, i1, count, k, score, marks, pruned, r * block);
                }
            }
            for (int i = 0; i < count; i++) {
                int col = i1 + i;
                if (target.isPattern() && col % target.m() == 0) {
                    for (int r = 0; r < rows; r++) {
                        markLowest(pw, r * cols + col, upper, cols, col, target.m(), target.m() - target.n(), score, marks,
                                pruned, r * block + i);
                    }
                }
                if (group > 0 && col % group == 0) {
                    float[] values = new float[group];
                    for (int r = 0; r < rows; r++) {
                        for (int g = 0; g < group; g++) {
                            values[g] = (float) pw[r * cols + col + g];
                        }
                        grids[r * groups + col / group] = LatheEncoder.fitGroup(values, 0, group, quantize.bits(), quantize.zeroPoint());
                    }
                }
                double d = upper[col * cols + col];
                for (int r = 0; r < rows; r++) {
                    double value = pw[r * cols + col];
                    double q = pruned[r * block + i] ? 0 : value;
                    if (group > 0 && q != 0) {
                        Grid grid = grids[r * groups + col / group];
                        q = grid.value(grid.level((float) q));
                    }
                    out[r * cols + col] = (float) q;
                    double e = (value - q) / d;
                    err[r * block + i] = e;
                    int rowBase = r * cols;
                    int uBase = col * cols;
                    for (int j = col + 1; j < i2; j++) {
                        pw[rowBase + j] -= e * upper[uBase + j];
                    }
                }
            }
            Gptq.updateLaterColumns(pw, err, block, upper, rows, cols, i1, count);
        }
        return new Result(out, grids);
    }

    /**
     * Marks as pruned the {@code k} of the {@code count} weights {@code pw[at..]} (columns
     * {@code col..}) with the lowest OBS saliency {@code w^2 / [H^-1]_jj^2}, in {@code pruned[mark..]}.
     */
    private static void markLowest(double[] pw, int at, double[] upper, int cols, int col, int count, int k,
                                   float[] score, float[] marks, boolean[] pruned, int mark) {
        for (int i = 0; i < count; i++) {
            double d = upper[(col + i) * cols + col + i];
            score[i] = (float) (pw[at + i] * pw[at + i] / (d * d));
            marks[i] = 1;
        }
        zeroLowest(marks, 0, score, 0, count, k);
        for (int i = 0; i < count; i++) {
            if (marks[i] == 0) {
                pruned[mark + i] = true;
            }
        }
    }
}
