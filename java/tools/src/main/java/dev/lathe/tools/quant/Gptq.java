package dev.lathe.tools.quant;

import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * GPTQ (Frantar et al., 2022) for one linear layer {@code W [rows, K]} given the Hessian
 * {@code H = 2/N X^T X} of its calibration inputs {@code X [N, K]}: columns are quantized one at
 * a time and each one's rounding error is spread over the columns not yet quantized, weighted by
 * the inverse Hessian's upper Cholesky factor; updates are applied lazily per block of 128
 * columns. Dead inputs (zero Hessian diagonal) get zero weights; {@code dampening} adds that
 * fraction of the mean diagonal before factoring.
 *
 * <p>Act-order processes columns by decreasing Hessian diagonal (the most active inputs first).
 */
// NOTE: with act-order the group grids are fixed up front from the unmodified weights of each
// contiguous group ("static groups"), so the stored layout needs no g_idx permutation and the
// CPU and CUDA kernels stay the plain group-wise ones. Without act-order a group's grid is fitted
// when the walk reaches it, on the weights as they stood at the start of its 128-column block,
// as the reference does (fitting on the intra-block-updated weights instead was measurably worse
// at 2 bits: the updates can widen a group's range).
public final class Gptq {
    private static final int BLOCK = 128;

    private Gptq() {
    }

    /**
     * A quantized layer: {@code levels [rows, K]} with one grid per row and group
     * ({@code grids[row * groups + g]}), and the values they decode to.
     */
    public record Result(byte[] levels, Grid[] grids, float[] dequantized, int rows, int cols) {
        /** Grids of {@code row}, one per group. */
        public Grid[] rowGrids(int row, int groupsPerRow) {
            return Arrays.copyOfRange(grids, row * groupsPerRow, (row + 1) * groupsPerRow);
        }
    }

    /**
     * Quantizes {@code weights [rows, cols]} (not modified) to {@code format} (group-wise INT).
     *
     * @param hessian   {@code [cols, cols]} row-major, {@code sum x x^T} over calibration inputs
     *                  (any positive scale; modified by this call)
     * @param dampening fraction of the mean diagonal added to the diagonal (0.01 is the reference default)
     * @param actOrder  process columns by decreasing Hessian diagonal
     */
    public static Result quantize(float[] weights, int rows, int cols, double[] hessian, LatheFormat format,
                                  double dampening, boolean actOrder) {
        if (format.kind() != LatheFormat.Kind.INT_GROUP || cols % format.groupSize() != 0) {
            throw new IllegalArgumentException("GPTQ writes group-wise INT with K a multiple of the group: " + format + ", K " + cols);
        }
        int group = format.groupSize();
        int groups = cols / group;
        float[] w = weights.clone();
        for (int i = 0; i < cols; i++) {
            if (hessian[i * cols + i] == 0) {
                hessian[i * cols + i] = 1;
                for (int r = 0; r < rows; r++) {
                    w[r * cols + i] = 0;
                }
            }
        }
        Grid[] grids = new Grid[rows * groups];
        if (actOrder) { // static groups: see the NOTE above
            for (int r = 0; r < rows; r++) {
                for (int g = 0; g < groups; g++) {
                    grids[r * groups + g] = LatheEncoder.fitGroup(w, r * cols + g * group, group, format.bits(), format.zeroPoint());
                }
            }
        }
        int[] order = IntStream.range(0, cols).boxed()
                .sorted(actOrder ? Comparator.comparingDouble((Integer i) -> -hessian[i * cols + i]) : Comparator.naturalOrder())
                .mapToInt(Integer::intValue).toArray();
        double[] h = permute(hessian, cols, order);
        double[] upper = inverseCholeskyUpper(h, cols, dampening);

        // Work on the permuted weights [rows, cols] in double for the error updates.
        double[] pw = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                pw[r * cols + j] = w[r * cols + order[j]];
            }
        }
        byte[] levels = new byte[rows * cols];
        float[] dequantized = new float[rows * cols];
        double[] err = new double[rows * BLOCK];
        float[] groupValues = new float[group];
        for (int i1 = 0; i1 < cols; i1 += BLOCK) {
            int i2 = Math.min(cols, i1 + BLOCK);
            int count = i2 - i1;
            // NOTE: as the reference, group grids are fitted on the weights as they were when this
            // block started (earlier blocks' lazy updates applied, this block's own not yet).
            double[] blockStart = new double[rows * count];
            for (int r = 0; r < rows; r++) {
                System.arraycopy(pw, r * cols + i1, blockStart, r * count, count);
            }
            for (int i = 0; i < count; i++) {
                int col = i1 + i;
                int original = order[col];
                int g = original / group;
                if (!actOrder && original % group == 0) {
                    for (int r = 0; r < rows; r++) {
                        for (int k = 0; k < group; k++) {
                            groupValues[k] = (float) blockStart[r * count + i + k];
                        }
                        grids[r * groups + g] = LatheEncoder.fitGroup(groupValues, 0, group, format.bits(), format.zeroPoint());
                    }
                }
                double d = upper[col * cols + col];
                for (int r = 0; r < rows; r++) {
                    Grid grid = grids[r * groups + g];
                    double value = pw[r * cols + col];
                    int level = grid.level((float) value);
                    float q = grid.value(level);
                    levels[r * cols + original] = (byte) level;
                    dequantized[r * cols + original] = q;
                    double e = (value - q) / d;
                    err[r * BLOCK + i] = e;
                    int rowBase = r * cols;
                    int uBase = col * cols;
                    for (int j = col + 1; j < i2; j++) {
                        pw[rowBase + j] -= e * upper[uBase + j];
                    }
                }
            }
            updateLaterColumns(pw, err, BLOCK, upper, rows, cols, i1, count);
        }
        return new Result(levels, grids, dequantized, rows, cols);
    }

    private static double[] permute(double[] h, int n, int[] order) {
        double[] p = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                p[i * n + j] = h[order[i] * n + order[j]];
            }
        }
        return p;
    }

    /**
     * The upper Cholesky factor {@code U} of {@code (H + damp I)^-1} ({@code H^-1 = U^T U}),
     * row-major {@code [n, n]}. When H is not positive definite even after dampening, the
     * dampening grows tenfold, up to four times, before giving up with a clear error.
     */
    /**
     * The lazy update of GPTQ / SparseGPT: after a block of {@code count} columns starting at
     * {@code i1} is decided, every later column {@code j >= i1 + count} of {@code pw [rows, cols]}
     * takes the block's scaled errors {@code err [rows, errStride]} times the inverse-Hessian
     * factor's rows {@code upper [cols, cols]}.
     */
    public static void updateLaterColumns(double[] pw, double[] err, int errStride, double[] upper, int rows, int cols,
                                          int i1, int count) {
        int i2 = i1 + count;
        if (i2 >= cols) {
            return;
        }
        for (int r = 0; r < rows; r++) {
            int rowBase = r * cols;
            for (int i = 0; i < count; i++) {
                double e = err[r * errStride + i];
                if (e == 0) {
                    continue;
                }
                int uBase = (i1 + i) * cols;
                for (int j = i2; j < cols; j++) {
                    pw[rowBase + j] -= e * upper[uBase + j];
                }
            }
        }
    }

    public static double[] inverseCholeskyUpper(double[] h, int n, double dampening) {
        double mean = 0;
        for (int i = 0; i < n; i++) {
            mean += h[i * n + i];
        }
        mean /= n;
        double damp = dampening * mean;
        for (int attempt = 0; attempt < 5; attempt++, damp *= 10) {
            double[] a = h.clone();
            for (int i = 0; i < n; i++) {
                a[i * n + i] += damp;
            }
            double[] lower = choleskyLower(a, n);
            if (lower == null) {
                continue;
            }
            double[] inverse = inverseFromCholesky(lower, n);
            double[] lowerOfInverse = choleskyLower(inverse, n);
            if (lowerOfInverse == null) {
                continue;
            }
            double[] upper = new double[n * n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j <= i; j++) {
                    upper[j * n + i] = lowerOfInverse[i * n + j];
                }
            }
            return upper;
        }
        throw new IllegalArgumentException("the calibration Hessian is not positive definite even with dampening "
                + damp / mean + " x its mean diagonal: use more calibration text");
    }

    /** L with {@code A = L L^T}, or null when A is not positive definite. */
    static double[] choleskyLower(double[] a, int n) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = a[i * n + j];
                for (int k = 0; k < j; k++) {
                    sum -= l[i * n + k] * l[j * n + k];
                }
                if (i == j) {
                    if (!(sum > 0)) {
                        return null;
                    }
                    l[i * n + i] = Math.sqrt(sum);
                } else {
                    l[i * n + j] = sum / l[j * n + j];
                }
            }
        }
        return l;
    }

    /** {@code A^-1 = L^-T L^-1} from A's lower Cholesky factor. */
    static double[] inverseFromCholesky(double[] l, int n) {
        double[] inv = new double[n * n]; // L^-1, lower triangular
        for (int c = 0; c < n; c++) {
            inv[c * n + c] = 1 / l[c * n + c];
            for (int i = c + 1; i < n; i++) {
                double sum = 0;
                for (int k = c; k < i; k++) {
                    sum -= l[i * n + k] * inv[k * n + c];
                }
                inv[i * n + c] = sum / l[i * n + i];
            }
        }
        double[] out = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = 0;
                for (int k = i; k < n; k++) { // (L^-T L^-1)[i][j] = sum_k inv[k][i] * inv[k][j], k >= max(i, j)
                    sum += inv[k * n + i] * inv[k * n + j];
                }
                out[i * n + j] = sum;
                out[j * n + i] = sum;
            }
        }
        return out;
    }

    /** Adds {@code sum_t x_t x_t^T} over {@code tokens} rows of {@code x [tokens, n]} into {@code hessian [n, n]}. */
    public static void accumulateHessian(double[] hessian, float[] x, int xOffset, int tokens, int n) {
        for (int t = 0; t < tokens; t++) {
            int base = xOffset + t * n;
            for (int i = 0; i < n; i++) {
                double xi = x[base + i];
                if (xi == 0) {
                    continue;
                }
                int row = i * n;
                for (int j = 0; j <= i; j++) {
                    hessian[row + j] += xi * x[base + j];
                }
            }
        }
    }

    /** Mirrors the lower triangle filled by {@link #accumulateHessian} into the upper one. */
    public static void symmetrize(double[] hessian, int n) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                hessian[j * n + i] = hessian[i * n + j];
            }
        }
    }
}
