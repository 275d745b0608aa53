package dev.lathe.core.engine;

import java.util.List;

/**
 * What a request produced.
 *
 * @param id                the request's id
 * @param promptTokens      the prompt as fed to the model
 * @param completions       one per sample, by index
 * @param cachedPromptTokens prompt tokens found in the prefix cache at first admission
 * @param computedTokens    tokens the request ran through the model (all samples, recomputation included)
 * @param queuedNanos       from submission to first admission
 * @param firstTokenNanos   from submission to the first generated token (time to first token)
 * @param totalNanos        from submission to the end
 */
public record RequestOutput(String id, int[] promptTokens, List<Completion> completions, int cachedPromptTokens,
                            long computedTokens, long queuedNanos, long firstTokenNanos, long totalNanos) {

    /** The first (for n = 1 the only) sample. */
    public Completion first() {
        return completions.getFirst();
    }

    public int completionTokens() {
        int total = 0;
        for (Completion c : completions) {
            total += c.tokenIds().length;
        }
        return total;
    }
}
