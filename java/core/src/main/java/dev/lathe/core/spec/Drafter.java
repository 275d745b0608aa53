package dev.lathe.core.spec;

import dev.lathe.core.sample.SamplingParams;

import java.util.ArrayList;
import java.util.List;

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

    /**
     * Drafts for several sequences at once, each request's session opened by this drafter: a
     * drafter that runs a model runs each draft round as one forward pass over all of them. By
     * default, each session in turn.
     */
    default List<Draft> proposeAll(List<DraftRequest> requests) {
        List<Draft> drafts = new ArrayList<>(requests.size());
        for (DraftRequest r : requests) {
            drafts.add(r.session().propose(r.history(), r.length(), r.k()));
        }
        return drafts;
    }

    /**
     * Sizes what the sessions share for about {@code tokens} tokens in flight at once (the
     * batching engine passes its KV pool's size); without it, state is sized per session.
     */
    default void reserve(long tokens) {
    }

    /** A short description for logs and statistics, e.g. {@code "ngram(1..3)"}. */
    String describe();

    /** Releases what the drafter owns (a draft model's file); nothing by default. */
    @Override
    default void close() {
    }
}
