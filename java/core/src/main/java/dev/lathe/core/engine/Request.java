package dev.lathe.core.engine;

import dev.lathe.core.sample.SamplingParams;

import java.util.Arrays;

/**
 * One generation request. The prompt is text (tokenized with BOS by the engine) or token ids
 * (used as given). Limits: {@link SamplingParams#maxNewTokens()} and its stop strings, plus
 * {@code stopTokenIds} on top of the model's own stop tokens (EOS, end of turn).
 *
 * @param id           caller's id, echoed in the output; unique among the engine's live requests
 * @param promptText   the prompt as text, or null when {@code promptTokens} is given
 * @param promptTokens the prompt as token ids, or null when {@code promptText} is given
 * @param sampling     sampling parameters, max new tokens, stop strings and seed
 * @param n            samples of this prompt, sharing its prefill (fork, copy on write); sample
 *                     {@code i} is seeded with {@code seed + i}
 * @param priority     larger is more important (scheduled first, preempted last); FCFS within one
 * @param logprobs     how many top log-probabilities to return per generated token; 0 = none
 * @param stopTokenIds extra token ids that end generation (not included in the output)
 * @param ignoreEos    the model's own stop tokens do not end generation (benchmarks); {@code stopTokenIds} still do
 */
public record Request(String id, String promptText, int[] promptTokens, SamplingParams sampling, int n, int priority,
                      int logprobs, int[] stopTokenIds, boolean ignoreEos) {
    /** Upper bound on {@link #n}: each sample holds its own sampler and, once it diverges, KV blocks. */
    public static final int MAX_N = 128;
    /** Upper bound on {@link #logprobs}. */
    public static final int MAX_LOGPROBS = 20;

    public Request {
        if (id == null) {
            throw new IllegalArgumentException("request id is null");
        }
        if ((promptText == null) == (promptTokens == null)) {
            throw new IllegalArgumentException("request " + id + ": give exactly one of prompt text and prompt token ids");
        }
        if (sampling == null) {
            throw new IllegalArgumentException("request " + id + ": sampling parameters are null");
        }
        if (n < 1 || n > MAX_N) {
            throw new IllegalArgumentException("request " + id + ": n = " + n + ", expected 1 to " + MAX_N);
        }
        if (logprobs < 0 || logprobs > MAX_LOGPROBS) {
            throw new IllegalArgumentException("request " + id + ": logprobs = " + logprobs + ", expected 0 to " + MAX_LOGPROBS);
        }
        promptTokens = promptTokens == null ? null : promptTokens.clone();
        stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
    }

    public static Request ofText(String id, String prompt, SamplingParams sampling) {
        return new Request(id, prompt, null, sampling, 1, 0, 0, null, false);
    }

    public static Request ofTokens(String id, int[] prompt, SamplingParams sampling) {
        return new Request(id, null, prompt, sampling, 1, 0, 0, null, false);
    }

    public Request withN(int value) {
        return new Request(id, promptText, promptTokens, sampling, value, priority, logprobs, stopTokenIds, ignoreEos);
    }

    public Request withPriority(int value) {
        return new Request(id, promptText, promptTokens, sampling, n, value, logprobs, stopTokenIds, ignoreEos);
    }

    public Request withLogprobs(int value) {
        return new Request(id, promptText, promptTokens, sampling, n, priority, value, stopTokenIds, ignoreEos);
    }

    public Request withStopTokenIds(int... value) {
        return new Request(id, promptText, promptTokens, sampling, n, priority, logprobs, value, ignoreEos);
    }

    public Request withIgnoreEos(boolean value) {
        return new Request(id, promptText, promptTokens, sampling, n, priority, logprobs, stopTokenIds, value);
    }

    @Override
    public String toString() {
        return "Request[" + id + ", " + (promptText != null ? "text of " + promptText.length() + " chars"
                : Arrays.toString(promptTokens).length() > 60 ? promptTokens.length + " tokens" : Arrays.toString(promptTokens)) + "]";
    }
}
