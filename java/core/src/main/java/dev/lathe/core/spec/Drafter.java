package dev.lathe.core.spec;

import dev.lathe.core.sample.SamplingParams;

/**
 * Proposes cheap guesses of a sequence's next tokens for the target model to verify. One drafter
 * serves many sequences; each sequence drafts through its own {@link DraftSession}.
 */
public interface Drafter extends AutoCloseable {

    /**
     * Starts drafting for one sequence that will hold at most {@code capacity} tokens. A drafter
     * that samples draws from the distribution {@code params} makes of its logits, exactly as the
     * target's sampler processes the target's (the rejection rule needs q and p processed alike).
     */
    DraftSession open(SamplingParams params, int capacity);

    /** A short description for logs and statistics, e.g. {@code "ngram(1..3)"}. */
    String describe();

    /** Releases what the drafter owns (a draft model's file); nothing by default. */
    @Override
    default void close() {
    }
}
