package dev.lathe.core.engine;

import dev.lathe.core.sample.LogSumExp;

/**
 * Log-probabilities around one generated token, from the model's raw distribution (log-softmax
 * of the logits, before penalties, temperature and filters).
 *
 * @param token       the generated token
 * @param logprob     its log-probability
 * @param topTokens   the most likely tokens, best first
 * @param topLogprobs their log-probabilities
 */
public record TokenLogprobs(int token, float logprob, int[] topTokens, float[] topLogprobs) {

    /** Computes them for {@code token} from {@code logits} (not modified) with the {@code k} best alternatives. */
    static TokenLogprobs of(float[] logits, int token, int k) {
        float logNorm = (float) LogSumExp.of(logits);
        int[] top = new int[k];
        float[] topValues = new float[k];
        int count = 0;
        for (int i = 0; i < logits.length; i++) {
            float v = logits[i];
            if (count < k || v > topValues[count - 1]) {
                int at = count < k ? count++ : count - 1;
                while (at > 0 && topValues[at - 1] < v) {
                    top[at] = top[at - 1];
                    topValues[at] = topValues[at - 1];
                    at--;
                }
                top[at] = i;
                topValues[at] = v;
            }
        }
        for (int i = 0; i < count; i++) {
            topValues[i] -= logNorm;
        }
        return new TokenLogprobs(token, logits[token] - logNorm, top, topValues);
    }
}
