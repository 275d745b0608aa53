package dev.lathe.server;

import dev.lathe.core.sample.SamplingParams;

/**
 * A validated completion or chat request, ready for the engine.
 *
 * @param chat          true for /v1/chat/completions (chat response shapes), false for /v1/completions
 * @param promptTokens  the prompt as token ids (BOS included when the model uses one)
 * @param sampling      sampling parameters, max tokens and stop strings
 * @param n             choices to generate
 * @param logprobs      whether each token's log-probability is returned
 * @param topLogprobs   how many alternatives come with it (0 to {@link RequestParser#MAX_TOP_LOGPROBS})
 * @param stream        answer with Server-Sent Events
 * @param includeUsage  with stream: a last chunk carries the usage
 * @param ignoreEos     extension: the model's stop tokens do not end generation (benchmarks)
 */
public record GenerationRequest(boolean chat, int[] promptTokens, SamplingParams sampling, int n, boolean logprobs,
                                int topLogprobs, boolean stream, boolean includeUsage, boolean ignoreEos) {
}
