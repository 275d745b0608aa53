package dev.lathe.core.testing;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.LlamaModel;

/** A model's logits over a token sequence, computed two ways, and the comparisons tests make of them. */
public final class ModelLogits {
    private static final int BLOCK = 16;

    private ModelLogits() {
    }

    /** Logits at every position of {@code tokens}, from one prefill of the whole sequence. */
    public static float[][] inOnePrefill(LlamaModel model, int[] tokens) {
        int[] table = blockTable(tokens.length);
        try (KvCache cache = model.newKvCache(table.length, BLOCK)) {
            Tensor out = model.forward(BatchPlan.singleSequence(tokens, 0, table, BLOCK, tokens.length), cache);
            float[][] rows = new float[tokens.length][model.config().vocabSize()];
            for (int t = 0; t < tokens.length; t++) {
                model.backend().copyRowToHost(out, t, rows[t]);
            }
            return rows;
        }
    }

    /** Logits at every position of {@code tokens}, from one decode step per token. */
    public static float[][] stepByStep(LlamaModel model, int[] tokens) {
        int[] table = blockTable(tokens.length);
        float[][] rows = new float[tokens.length][model.config().vocabSize()];
        try (KvCache cache = model.newKvCache(table.length, BLOCK)) {
            for (int t = 0; t < tokens.length; t++) {
                Tensor out = model.forward(BatchPlan.singleSequence(new int[] {tokens[t]}, t, table, BLOCK, true), cache);
                model.backend().copyRowToHost(out, 0, rows[t]);
            }
        }
        return rows;
    }

    private static int[] blockTable(int tokens) {
        int[] table = new int[(tokens + BLOCK - 1) / BLOCK];
        for (int i = 0; i < table.length; i++) {
            table[i] = i;
        }
        return table;
    }

    /** The largest |a[i] - b[i]|. */
    public static double maxAbsDifference(float[] a, float[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }

    /** The largest |a[t][i] - b[t][i]| over all rows. */
    public static double maxAbsDifference(float[][] a, float[][] b) {
        double max = 0;
        for (int t = 0; t < a.length; t++) {
            max = Math.max(max, maxAbsDifference(a[t], b[t]));
        }
        return max;
    }

    /** ||expected - actual|| / ||expected||. */
    public static double relativeError(float[] expected, float[] actual) {
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = (double) expected[i] - actual[i];
            diff += d * d;
            norm += (double) expected[i] * expected[i];
        }
        return Math.sqrt(diff / norm);
    }

    /** The gap between the largest and second-largest logit. */
    public static float topGap(float[] logits) {
        float first = Float.NEGATIVE_INFINITY;
        float second = Float.NEGATIVE_INFINITY;
        for (float v : logits) {
            if (v > first) {
                second = first;
                first = v;
            } else if (v > second) {
                second = v;
            }
        }
        return first - second;
    }
}
