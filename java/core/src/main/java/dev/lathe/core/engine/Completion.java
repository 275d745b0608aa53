package dev.lathe.core.engine;

import java.util.List;

/**
 * One sample of a request.
 *
 * @param index        which of the request's n samples (0-based)
 * @param text         the generated text, up to (not including) a stop string
 * @param tokenIds     the generated tokens (a stop token excluded)
 * @param finishReason {@code "stop"} (stop token or string), {@code "length"} (max tokens or the
 *                     context is full) or {@code "abort"} (cancelled)
 * @param logprobs     one entry per generated token when asked for, else empty
 */
public record Completion(int index, String text, int[] tokenIds, String finishReason, List<TokenLogprobs> logprobs) {
}
