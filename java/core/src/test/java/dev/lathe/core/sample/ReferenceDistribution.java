package dev.lathe.core.sample;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * The sampling chain written from its definitions, slowly and in double precision: whole-array
 * sorts, no heaps, no thresholds. {@link Sampler} is tested against it.
 */
final class ReferenceDistribution {
    private ReferenceDistribution() {
    }

    /** Logits after the penalties, as a new array. */
    static float[] penalized(SamplingParams params, float[] logits, int[] history, int historyLength) {
        float[] result = logits.clone();
        if (params.penaltyWindow() == 0) {
            return result;
        }
        int start = params.penaltyWindow() < 0 ? 0 : Math.max(0, historyLength - params.penaltyWindow());
        for (int token = 0; token < logits.length; token++) {
            int count = 0;
            for (int i = start; i < historyLength; i++) {
                if (history[i] == token) {
                    count++;
                }
            }
            if (count == 0) {
                continue;
            }
            float logit = result[token];
            if (params.repetitionPenalty() != 1.0f) {
                logit = logit > 0 ? logit / params.repetitionPenalty() : logit * params.repetitionPenalty();
            }
            result[token] = logit - (count * params.frequencyPenalty() + params.presencePenalty());
        }
        return result;
    }

    /** The probability of every token after the whole chain. */
    static double[] probabilities(SamplingParams params, float[] logits, int[] history, int historyLength) {
        float[] penalized = penalized(params, logits, history, historyLength);
        int n = penalized.length;
        double[] result = new double[n];
        // Highest logit first, lowest id first among equals.
        Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -penalized[i]).thenComparingInt(i -> i));
        if (params.isGreedy()) {
            result[order[0]] = 1.0;
            return result;
        }
        int kept = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        double max = penalized[order[0]];
        double[] sorted = new double[kept];
        double sum = 0;
        for (int i = 0; i < kept; i++) {
            sorted[i] = Math.exp((penalized[order[i]] - max) / params.temperature());
            sum += sorted[i];
        }
        for (int i = 0; i < kept; i++) {
            sorted[i] /= sum;
        }
        // The order by probability is the order by logit, so top-p is a prefix of it.
        if (params.topP() < 1.0f) {
            double cumulative = 0;
            for (int i = 0; i < kept; i++) {
                cumulative += sorted[i];
                if (cumulative >= params.topP()) {
                    kept = i + 1;
                    break;
                }
            }
        }
        if (params.minP() > 0) {
            int i = 0;
            while (i < kept && sorted[i] >= params.minP() * sorted[0]) {
                i++;
            }
            kept = i;
        }
        double keptSum = 0;
        for (int i = 0; i < kept; i++) {
            keptSum += sorted[i];
        }
        for (int i = 0; i < kept; i++) {
            result[order[i]] = sorted[i] / keptSum;
        }
        return result;
    }
}
