package dev.lathe.core.generate;

/**
 * What one {@link Generator#generate} call produced.
 *
 * @param promptTokens  the prompt as fed to the model (with BOS when the model uses one)
 * @param tokens        the generated token ids (the stop token, when one ended the run, excluded)
 * @param text          the generated text, up to (not including) a stop string
 * @param finishReason  {@code "stop"} (a stop token or string) or {@code "length"} (max tokens or context full)
 * @param prefillNanos  time spent on the prompt
 * @param decodeNanos   time spent producing the tokens after the first
 * @param decodeStats   decode steps, speculative drafts and early-exit layers
 */
public record GenerationResult(int[] promptTokens, int[] tokens, String text, String finishReason,
                               long prefillNanos, long decodeNanos, DecodeStats decodeStats) {

    public double prefillTokensPerSecond() {
        return prefillNanos == 0 ? 0 : promptTokens.length * 1e9 / prefillNanos;
    }

    /** Decode speed over the tokens after the first (the first comes out of prefill). */
    public double decodeTokensPerSecond() {
        int decoded = Math.max(0, tokens.length - 1);
        return decodeNanos == 0 ? 0 : decoded * 1e9 / decodeNanos;
    }
}
