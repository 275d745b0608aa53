package dev.lathe.tools.quant;

import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;

import java.util.List;

/**
 * AWQ's activation-aware scale search (Lin et al., 2023) for linear layers that share one input
 * {@code X [N, K]}: per input channel {@code s_k = mean|x_k|^alpha}, normalised so
 * {@code max(s) * min(s) = 1}, for alpha on a grid of {@code gridPoints} values in [0, 1);
 * the alpha whose quantized layers {@code Q(W diag(s)) diag(s)^-1} reproduce the full-precision
 * outputs {@code X W^T} best (squared error, summed over the layers) wins. Alpha 0 is plain RTN,
 * so on the calibration inputs the result is never worse than RTN.
 *
 * <p>The caller folds {@code 1/s} into whatever produces X (a norm's weight, or the rows of the
 * preceding linear) and quantizes {@code W diag(s)}: the model computes the same function and
 * inference costs nothing extra.
 */
public final class Awq {
    private Awq() {
    }

    /** A linear layer {@code [rows, cols]}, row-major f32. */
    public record Linear(float[] weights, int rows, int cols) {
    }

    /** The chosen scales, the alpha that made them, and that alpha's output error. */
    public record Search(float[] scales, double alpha, double error, double rtnError) {
    }

    /**
     * Searches the scales for {@code layers} sharing the input {@code x [tokens, K]}.
     *
     * @param format group-wise INT format the layers will be stored in
     */
    public static Search searchScales(List<Linear> layers, float[] x, int tokens, LatheFormat format, int gridPoints) {
        int k = layers.getFirst().cols();
        for (Linear l : layers) {
            if (l.cols() != k) {
                throw new IllegalArgumentException("layers sharing an input must have the same K: " + l.cols() + " vs " + k);
            }
        }
        double[] meanAbs = new double[k];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < k; i++) {
                meanAbs[i] += Math.abs(x[t * k + i]);
            }
        }
        for (int i = 0; i < k; i++) {
            meanAbs[i] /= tokens;
        }
        float[][] reference = new float[layers.size()][];
        for (int j = 0; j < layers.size(); j++) {
            reference[j] = outputs(layers.get(j).weights(), layers.get(j).rows(), k, x, tokens);
        }
        float[] bestScales = null;
        double bestError = Double.POSITIVE_INFINITY;
        double bestAlpha = 0;
        double rtnError = 0;
        for (int step = 0; step < gridPoints; step++) {
            double alpha = (double) step / gridPoints;
            float[] s = scalesFor(meanAbs, alpha);
            double error = 0;
            for (int j = 0; j < layers.size(); j++) {
                Linear l = layers.get(j);
                float[] effective = quantizeScaled(l.weights(), l.rows(), k, s, format);
                error += squaredError(reference[j], outputs(effective, l.rows(), k, x, tokens));
            }
            if (step == 0) {
                rtnError = error;
            }
            if (error < bestError) {
                bestError = error;
                bestScales = s;
                bestAlpha = alpha;
            }
        }
        return new Search(bestScales, bestAlpha, bestError, rtnError);
    }

    static float[] scalesFor(double[] meanAbs, double alpha) {
        int k = meanAbs.length;
        float[] s = new float[k];
        double max = 0;
        double min = Double.POSITIVE_INFINITY;
        for (int i = 0; i < k; i++) {
            double v = Math.max(1e-4, Math.pow(meanAbs[i], alpha));
            s[i] = (float) v;
            max = Math.max(max, v);
            min = Math.min(min, v);
        }
        double norm = Math.sqrt(max * min);
        for (int i = 0; i < k; i++) {
            s[i] = (float) (s[i] / norm);
        }
        return s;
    }

    /** {@code Q(W diag(s)) diag(s)^-1}: the weights the model effectively uses after folding. */
    public static float[] quantizeScaled(float[] w, int rows, int cols, float[] s, LatheFormat format) {
        float[] scaled = scaleColumns(w, rows, cols, s);
        float[] q = fakeQuantize(scaled, rows, cols, format);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                q[r * cols + i] /= s[i];
            }
        }
        return q;
    }

    /** {@code W diag(s)}. */
    public static float[] scaleColumns(float[] w, int rows, int cols, float[] s) {
        float[] out = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                out[r * cols + i] = w[r * cols + i] * s[i];
            }
        }
        return out;
    }

    /** RTN quantize-then-dequantize of {@code w [rows, cols]} in group-wise {@code format} (what LatheEncoder stores). */
    public static float[] fakeQuantize(float[] w, int rows, int cols, LatheFormat format) {
        int g = format.groupSize();
        float[] out = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cols / g; b++) {
                int base = r * cols + b * g;
                Grid grid = LatheEncoder.fitGroup(w, base, g, format.bits(), format.zeroPoint());
                for (int i = 0; i < g; i++) {
                    out[base + i] = grid.value(grid.level(w[base + i]));
                }
            }
        }
        return out;
    }

    /** {@code X W^T}: {@code [tokens, rows]}. */
    static float[] outputs(float[] w, int rows, int cols, float[] x, int tokens) {
        float[] y = new float[tokens * rows];
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                float sum = 0;
                for (int i = 0; i < cols; i++) {
                    sum += x[t * cols + i] * w[r * cols + i];
                }
                y[t * rows + r] = sum;
            }
        }
        return y;
    }

    static double squaredError(float[] a, float[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            double d = a[i] - b[i];
            sum += d * d;
        }
        return sum;
    }
}
