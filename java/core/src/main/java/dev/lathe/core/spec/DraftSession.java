package dev.lathe.core.spec;

/** One sequence's drafting state (a draft model's KV cache, say). Not thread-safe. */
public interface DraftSession extends AutoCloseable {

    /**
     * Up to {@code k} tokens to follow {@code history[0, length)}; fewer, or none, when the
     * drafter has no good guess. The history may differ from the one of the previous call by
     * any suffix (rejected drafts are gone, accepted ones and a replacement are new): a session
     * that caches state keeps only what still matches.
     */
    Draft propose(int[] history, int length, int k);

    @Override
    default void close() {
    }
}
