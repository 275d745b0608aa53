package dev.lathe.core.spec;

/**
 * A sequence's draft length, adapted to how many of its drafts the target accepts.
 *
 * <p>The rule (Hugging Face's assisted generation): start at the maximum K; after a step whose
 * drafts were all accepted, draft 2 more next time (at most K); after a step with a rejection, 1
 * fewer (at least 1). A sequence whose drafts keep failing so spends one draft token per step
 * instead of K, and one that copies its prompt climbs back to K in a few steps. Steps without a
 * proposal (an n-gram drafter with no match) change nothing.
 */
public final class DraftLength {
    private static final int GROW = 2;
    private static final int SHRINK = 1;

    private final int max;
    private int current;

    public DraftLength(int max) {
        if (max < 1) {
            throw new IllegalArgumentException("draft tokens K = " + max + ": expected at least 1");
        }
        this.max = max;
        this.current = max;
    }

    /** Tokens to draft in the next step. */
    public int next() {
        return current;
    }

    /** Records a step: {@code drafted} tokens proposed, the first {@code accepted} of them kept. */
    public void observe(int drafted, int accepted) {
        if (drafted == 0) {
            return;
        }
        current = accepted == drafted ? Math.min(max, current + GROW) : Math.max(1, current - SHRINK);
    }
}
