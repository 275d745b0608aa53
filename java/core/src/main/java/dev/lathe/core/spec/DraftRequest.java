package dev.lathe.core.spec;

/**
 * One sequence's part of a batched {@link Drafter#proposeAll}: the arguments of
 * {@link DraftSession#propose} for {@code session}.
 */
public record DraftRequest(DraftSession session, int[] history, int length, int k) {
}
