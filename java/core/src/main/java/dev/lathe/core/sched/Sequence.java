package dev.lathe.core.sched;

import java.util.Arrays;

/**
 * One token sequence as the scheduler sees it: its known tokens (prompt, then generated ones) and
 * how many of them are in the KV cache. The vLLM v1 rule drives everything: each step, a running
 * sequence's computed tokens catch up with its known tokens as far as the step's budget allows,
 * which covers a whole prompt, a chunk of one, a prompt whose head was found in the prefix cache,
 * a decode step, and recomputation after preemption alike.
 *
 * <p>Mutated only on the scheduler's thread.
 */
public final class Sequence {
    /** Where a sequence is in its life. */
    public enum Status { WAITING, RUNNING, FINISHED }

    private final long id;
    private final int priority;
    private final long arrival;
    private final int promptLength;
    private int[] tokens;
    private int length;
    private int computed;
    private int drafts; // the last `drafts` known tokens are unverified speculative drafts
    private Status status = Status.WAITING;
    private int preemptions;
    private long tokensComputed;
    private long prefixHitTokens;

    /**
     * @param id       unique among live sequences
     * @param priority larger is more important: scheduled first, preempted last
     * @param arrival  order of arrival; FCFS within a priority (smaller first)
     * @param prompt   the prompt tokens (copied)
     * @param capacity the most tokens this sequence will ever hold (prompt + new tokens), sizing its buffer
     */
    public Sequence(long id, int priority, long arrival, int[] prompt, int capacity) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("sequence " + id + " has no prompt tokens");
        }
        this.id = id;
        this.priority = priority;
        this.arrival = arrival;
        this.promptLength = prompt.length;
        this.tokens = Arrays.copyOf(prompt, Math.max(prompt.length, capacity));
        this.length = prompt.length;
    }

    /** A fork: the same tokens and computed prefix, a new id. */
    Sequence forkAs(long childId, long childArrival) {
        Sequence child = new Sequence(childId, priority, childArrival, Arrays.copyOf(tokens, promptLength), tokens.length);
        System.arraycopy(tokens, 0, child.tokens, 0, length);
        child.length = length;
        child.computed = computed;
        return child;
    }

    public long id() {
        return id;
    }

    public int priority() {
        return priority;
    }

    public long arrival() {
        return arrival;
    }

    public int promptLength() {
        return promptLength;
    }

    /** Known tokens: the prompt and every generated token. */
    public int length() {
        return length;
    }

    /** Tokens whose K/V are in the cache. */
    public int computed() {
        return computed;
    }

    public Status status() {
        return status;
    }

    /** The token buffer; the first {@link #length()} entries are valid (the sampler's history). */
    public int[] tokenBuffer() {
        return tokens;
    }

    public int[] tokens() {
        return Arrays.copyOf(tokens, length);
    }

    public int generatedCount() {
        return length - promptLength;
    }

    public int[] generated() {
        return Arrays.copyOfRange(tokens, promptLength, length);
    }

    /** Times this sequence was preempted (its cache dropped, to be recomputed). */
    public int preemptions() {
        return preemptions;
    }

    /** Tokens this sequence has run through the model, recomputation included. */
    public long tokensComputed() {
        return tokensComputed;
    }

    /** Tokens taken from the prefix cache instead of being computed, over all admissions. */
    public long prefixHitTokens() {
        return prefixHitTokens;
    }

    /**
     * Speculative tokens at the end of the known tokens, not yet verified: the scheduler feeds
     * them with the token before them and asks for logits at each, and never registers them in
     * the prefix cache.
     */
    public int draftCount() {
        return drafts;
    }

    /** Appends unverified draft tokens; they are computed (verified) in the next step. */
    public void appendDrafts(int[] draftTokens) {
        for (int token : draftTokens) {
            append(token);
        }
        drafts += draftTokens.length;
    }

    /** Drops the last {@code count} draft tokens (their K/V, if computed, lie past the end and are never read). */
    void dropDrafts(int count) {
        if (count < 0 || count > drafts) {
            throw new IllegalArgumentException("dropping " + count + " of " + drafts + " drafts of " + this);
        }
        length -= count;
        drafts -= count;
        computed = Math.min(computed, length);
    }

    /** After verification: the first {@code accepted} drafts become ordinary known tokens, the rest go. */
    void keepDrafts(int accepted) {
        dropDrafts(drafts - accepted);
        drafts = 0;
    }

    /**
     * Cuts the known tokens back to {@code newLength} (a sample that stops inside a run of accepted
     * drafts ends there). Only verified tokens can be cut.
     */
    public void truncate(int newLength) {
        if (drafts != 0 || newLength < promptLength || newLength > length) {
            throw new IllegalArgumentException("cannot truncate " + this + " to " + newLength + " tokens");
        }
        length = newLength;
        computed = Math.min(computed, length);
    }

    /** Adds a sampled token; it is computed in the next step. */
    public void append(int token) {
        if (status == Status.FINISHED) {
            throw new IllegalStateException("sequence " + id + " has finished");
        }
        if (length == tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(8, tokens.length * 2));
        }
        tokens[length++] = token;
    }

    void setStatus(Status status) {
        this.status = status;
    }

    void admitted(int cachedTokens) {
        computed = cachedTokens;
        prefixHitTokens += cachedTokens;
        status = Status.RUNNING;
    }

    void advance(int newTokens) {
        computed += newTokens;
        tokensComputed += newTokens;
    }

    void preempted() {
        dropDrafts(drafts);
        computed = 0;
        preemptions++;
        status = Status.WAITING;
    }

    @Override
    public String toString() {
        return "Sequence[" + id + ", " + status + ", " + computed + "/" + length + " computed"
                + (drafts > 0 ? " (" + drafts + " drafts)" : "") + ", priority " + priority + "]";
    }
}
