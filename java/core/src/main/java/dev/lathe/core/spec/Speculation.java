package dev.lathe.core.spec;

/**
 * Speculative decoding's settings for a generator or engine.
 *
 * @param drafter        who proposes the tokens
 * @param maxDraftTokens K: the most tokens drafted per step; the draft length adapts below it per
 *                       sequence ({@link DraftLength})
 */
public record Speculation(Drafter drafter, int maxDraftTokens) {
    public static final int DEFAULT_DRAFT_TOKENS = 4;

    public Speculation {
        if (drafter == null) {
            throw new IllegalArgumentException("speculation needs a drafter");
        }
        if (maxDraftTokens < 1) {
            throw new IllegalArgumentException("--draft-tokens " + maxDraftTokens + ": expected at least 1");
        }
    }
}
