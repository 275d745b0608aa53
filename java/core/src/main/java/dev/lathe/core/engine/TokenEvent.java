package dev.lathe.core.engine;

/**
 * One generated token as it streams out of a {@link RequestHandle}.
 *
 * @param index    which sample of the request
 * @param token    the token id; -1 for the last piece of text, released when a stop token ends the sample
 * @param text     text completed by this token (possibly empty: a partial UTF-8 character, or text
 *                 held back because it may start a stop string)
 * @param logprobs its log-probabilities when the request asked for them, else null
 */
public record TokenEvent(int index, int token, String text, TokenLogprobs logprobs) {
}
