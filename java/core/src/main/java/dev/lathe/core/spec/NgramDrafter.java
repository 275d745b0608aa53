package dev.lathe.core.spec;

import dev.lathe.core.sample.SamplingParams;

import java.util.Arrays;

/**
 * Prompt lookup: the sequence's last n tokens are searched for earlier in the sequence (prompt and
 * generated text alike), and the tokens that followed the latest earlier occurrence are proposed.
 * n goes from {@code maxN} down to {@code minN}: a longer match is better evidence. No model, so
 * the draft is deterministic (q one-hot). It pays off when the output copies its input: quoting,
 * editing, code, extraction.
 */
public final class NgramDrafter implements Drafter {
    /** NOTE: defaults as in vLLM's and llama.cpp's prompt lookup: up to trigrams, down to single tokens. */
    public static final int DEFAULT_MAX_N = 3;
    public static final int DEFAULT_MIN_N = 1;

    private final int minN;
    private final int maxN;

    public NgramDrafter() {
        this(DEFAULT_MIN_N, DEFAULT_MAX_N);
    }

    public NgramDrafter(int minN, int maxN) {
        if (minN < 1 || maxN < minN) {
            throw new IllegalArgumentException("n-gram sizes " + minN + ".." + maxN + ": expected 1 <= min <= max");
        }
        this.minN = minN;
        this.maxN = maxN;
    }

    @Override
    public DraftSession open(SamplingParams params, int capacity) {
        return (history, length, k) -> new Draft(lookup(history, length, k), null);
    }

    /**
     * The continuation (at most {@code k} tokens) of the latest earlier occurrence of the longest
     * suffix of {@code history[0, length)} of {@code maxN..minN} tokens; empty when none occurs.
     */
    public int[] lookup(int[] history, int length, int k) {
        for (int n = Math.min(maxN, length - 1); n >= minN; n--) {
            int suffix = length - n;
            // The latest occurrence first: recent text predicts the next tokens best. It must end
            // before the suffix's own last token so that at least one token follows it.
            for (int start = suffix - 1; start >= 0; start--) {
                if (Arrays.equals(history, start, start + n, history, suffix, length)) {
                    int from = start + n;
                    int to = Math.min(length, from + k);
                    return Arrays.copyOfRange(history, from, to);
                }
            }
        }
        return new int[0];
    }

    @Override
    public String describe() {
        return "ngram(" + minN + ".." + maxN + ")";
    }
}
