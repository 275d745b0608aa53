package dev.lathe.tools.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import dev.lathe.tools.quant.Gptq;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The three rules on one layer: the pattern and the sparsity hold exactly, and with calibration
 * inputs whose features differ in scale (as LLM activations do, with outlier features) Wanda and
 * SparseGPT reconstruct the layer's output better than magnitude.
 */
class WeightPruningTest {
    private static final int ROWS = 37;
    private static final int COLS = 96;
    private static final int TOKENS = 400;

    /**
     * Calibration inputs {@code [TOKENS, COLS]}: Gaussian features, each with its own scale (a few
     * large), and correlated through a few shared directions, as hidden states are.
     */
    private static float[] inputs(Random random) {
        double[] scale = new double[COLS];
        double[][] loading = new double[4][COLS];
        for (int j = 0; j < COLS; j++) {
            scale[j] = Math.exp(random.nextGaussian()) * (random.nextInt(10) == 0 ? 8 : 1);
            for (double[] l : loading) {
                l[j] = random.nextGaussian();
            }
        }
        float[] x = new float[TOKENS * COLS];
        for (int t = 0; t < TOKENS; t++) {
            double[] shared = {random.nextGaussian(), random.nextGaussian(), random.nextGaussian(), random.nextGaussian()};
            for (int j = 0; j < COLS; j++) {
                double v = random.nextGaussian();
                for (int k = 0; k < shared.length; k++) {
                    v += shared[k] * loading[k][j];
                }
                x[t * COLS + j] = (float) (v * scale[j]);
            }
        }
        return x;
    }

    private static float[] weights(Random random) {
        float[] w = new float[ROWS * COLS];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        return w;
    }

    private static double[] hessian(float[] x) {
        double[] h = new double[COLS * COLS];
        Gptq.accumulateHessian(h, x, 0, TOKENS, COLS);
        Gptq.symmetrize(h, COLS);
        return h;
    }

    private static double[] diagonal(double[] h) {
        double[] d = new double[COLS];
        for (int j = 0; j < COLS; j++) {
            d[j] = h[j * COLS + j];
        }
        return d;
    }

    /** {@code ||(W - P) X^T||^2} summed over the calibration tokens. */
    private static double reconstructionError(float[] w, float[] pruned, float[] x) {
        double sum = 0;
        for (int r = 0; r < ROWS; r++) {
            for (int t = 0; t < TOKENS; t++) {
                double e = 0;
                for (int j = 0; j < COLS; j++) {
                    e += (double) (w[r * COLS + j] - pruned[r * COLS + j]) * x[t * COLS + j];
                }
                sum += e * e;
            }
        }
        return sum;
    }

    private static float[][] allMethods(float[] w, double[] h, SparsityTarget target) {
        float[] magnitude = w.clone();
        WeightPruning.magnitude(magnitude, ROWS, COLS, target);
        float[] wanda = w.clone();
        WeightPruning.wanda(wanda, ROWS, COLS, diagonal(h), target);
        float[] sparseGpt = WeightPruning.sparseGpt(w, ROWS, COLS, h.clone(), target, null, 0.01).values();
        return new float[][] {magnitude, wanda, sparseGpt};
    }

    @Test
    void nmPatternHoldsInEveryGroup() {
        Random random = TestRandom.create("nmPatternHoldsInEveryGroup");
        float[] w = weights(random);
        double[] h = hessian(inputs(random));
        for (SparsityTarget target : new SparsityTarget[] {SparsityTarget.pattern(2, 4), SparsityTarget.pattern(4, 8),
            SparsityTarget.pattern(1, 4)}) {
            float[][] results = allMethods(w, h, target);
            for (int m = 0; m < results.length; m++) {
                for (int r = 0; r < ROWS; r++) {
                    for (int g = 0; g < COLS; g += target.m()) {
                        int nonZero = 0;
                        for (int i = 0; i < target.m(); i++) {
                            nonZero += results[m][r * COLS + g + i] != 0 ? 1 : 0;
                        }
                        assertEquals(target.n(), nonZero, "method " + m + " " + target + " row " + r + " group at " + g);
                    }
                }
            }
        }
    }

    @Test
    void unstructuredSparsityIsMetInEveryRow() {
        Random random = TestRandom.create("unstructuredSparsityIsMetInEveryRow");
        float[] w = weights(random);
        double[] h = hessian(inputs(random));
        for (double s : new double[] {0.5, 0.3, 0.77}) {
            SparsityTarget target = SparsityTarget.unstructured(s);
            float[][] results = allMethods(w, h, target);
            for (int m = 0; m < results.length; m++) {
                for (int r = 0; r < ROWS; r++) {
                    int zeros = 0;
                    for (int j = 0; j < COLS; j++) {
                        zeros += results[m][r * COLS + j] == 0 ? 1 : 0;
                    }
                    assertEquals(Math.round(COLS * s), zeros, "method " + m + " sparsity " + s + " row " + r);
                }
            }
        }
    }

    @Test
    void wandaAndSparseGptReconstructBetterThanMagnitude() {
        Random random = TestRandom.create("wandaAndSparseGptReconstructBetterThanMagnitude");
        float[] w = weights(random);
        float[] x = inputs(random);
        double[] h = hessian(x);
        for (SparsityTarget target : new SparsityTarget[] {SparsityTarget.unstructured(0.5), SparsityTarget.pattern(2, 4)}) {
            float[][] results = allMethods(w, h, target);
            double magnitude = reconstructionError(w, results[0], x);
            double wanda = reconstructionError(w, results[1], x);
            double sparseGpt = reconstructionError(w, results[2], x);
            System.out.printf("%s: reconstruction error magnitude %.4g, wanda %.4g, sparsegpt %.4g%n", target, magnitude, wanda, sparseGpt);
            assertTrue(wanda < magnitude, target + ": wanda " + wanda + " vs magnitude " + magnitude);
            assertTrue(sparseGpt < magnitude, target + ": sparsegpt " + sparseGpt + " vs magnitude " + magnitude);
        }
    }

    @Test
    void sparseGptWithInt4KeepsThePatternAndLandsOnItsGrids() {
        Random random = TestRandom.create("sparseGptWithInt4KeepsThePatternAndLandsOnItsGrids");
        float[] w = weights(random);
        double[] h = hessian(inputs(random));
        var format = dev.lathe.core.tensor.LatheFormat.sparse24Int4(32 * 2, true);
        WeightPruning.Result r = WeightPruning.sparseGpt(w, ROWS, COLS - 32, trim(h, COLS - 32), SparsityTarget.pattern(2, 4),
                format, 0.01);
        int cols = COLS - 32;
        for (int row = 0; row < ROWS; row++) {
            for (int i = 0; i < cols; i++) {
                float v = r.values()[row * cols + i];
                var grid = r.grids()[row * (cols / 64) + i / 64];
                assertEquals(v, grid.value(grid.level(v)), 1e-6 * Math.abs(v), "row " + row + " col " + i + " is on its grid");
            }
            for (int g = 0; g < cols; g += 4) {
                int nonZero = 0;
                for (int i = 0; i < 4; i++) {
                    nonZero += r.values()[row * cols + g + i] != 0 ? 1 : 0;
                }
                assertTrue(nonZero <= 2, "row " + row + " group " + g);
            }
        }
    }

    private static double[] trim(double[] h, int n) {
        double[] out = new double[n * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(h, i * COLS, out, i * n, n);
        }
        return out;
    }

    @Test
    void badTargetsAreClearErrors() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SparsityTarget.unstructured(0)).getMessage().contains("(0, 1)"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SparsityTarget.unstructured(1)).getMessage().contains("(0, 1)"));
        assertThrows(IllegalArgumentException.class, () -> SparsityTarget.unstructured(-0.2));
        assertThrows(IllegalArgumentException.class, () -> SparsityTarget.parsePattern("4:4"));
        assertThrows(IllegalArgumentException.class, () -> SparsityTarget.parsePattern("2-4"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SparsityTarget.pattern(4, 8).checkRow("blk.0.ffn_down.weight", 172));
        assertTrue(e.getMessage().contains("ffn_down") && e.getMessage().contains("172"), e.getMessage());
    }
}
