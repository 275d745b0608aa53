package dev.lathe.core.sample;

/** {@code log(sum(exp(logits)))}, computed around the largest logit so no term overflows. */
public final class LogSumExp {
    private LogSumExp() {
    }

    /** The log of the softmax denominator of {@code logits}; a logit minus it is its log-probability. */
    public static double of(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        return max + Math.log(sum);
    }
}
