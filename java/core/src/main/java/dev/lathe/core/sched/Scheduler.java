package dev.lathe.core.sched;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.kv.KvBlockManager;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.PriorityQueue;

/**
 * Iteration-level continuous batching (DESIGN.md, "Scheduler"). Each {@link #schedule} builds
 * one step under the token budget:
 * <ol>
 *   <li>running sequences, most important first, each catching its computed tokens up with its
 *       known tokens as far as the remaining budget allows (a decode token, or the next chunk of
 *       a long prompt, so a long prompt never stalls the decodes already running);</li>
 *   <li>when a running sequence needs a block and none is left, the least important running
 *       sequence (lowest priority, latest arrival) is preempted: its blocks are freed and it
 *       goes back to waiting, to be recomputed later (its full blocks usually stay in the prefix
 *       cache, so "later" is cheap);</li>
 *   <li>then, while budget and the running cap allow and nothing was preempted this step,
 *       waiting sequences are admitted in order (priority, then FCFS), starting from whatever
 *       prefix of their tokens the prefix cache holds.</li>
 * </ol>
 * NOTE: a waiting request never preempts a running one, even of lower priority: priorities order
 * admission and choose preemption victims. This keeps running requests' latency predictable.
 *
 * <p>Not thread-safe: one engine thread drives it.
 */
public final class Scheduler {
    /** Most important first: higher priority, then earlier arrival. */
    public static final Comparator<Sequence> ORDER = Comparator.comparingInt(Sequence::priority).reversed()
            .thenComparingLong(Sequence::arrival);

    private final KvBlockManager kv;
    private final SchedulerConfig config;
    private final PriorityQueue<Sequence> waiting = new PriorityQueue<>(ORDER);
    private final List<Sequence> running = new ArrayList<>();
    private long preemptions;

    public Scheduler(KvBlockManager kv, SchedulerConfig config) {
        this.kv = kv;
        this.config = config;
    }

    public KvBlockManager kv() {
        return kv;
    }

    public SchedulerConfig config() {
        return config;
    }

    public int waitingCount() {
        return waiting.size();
    }

    public int runningCount() {
        return running.size();
    }

    public boolean hasWork() {
        return !waiting.isEmpty() || !running.isEmpty();
    }

    /** Preemptions so far. */
    public long preemptions() {
        return preemptions;
    }

    /** Queues a new sequence. */
    public void add(Sequence s) {
        if (s.status() != Sequence.Status.WAITING || kv.has(s.id())) {
            throw new IllegalStateException(s + " cannot be added");
        }
        waiting.add(s);
    }

    /**
     * A running copy of {@code parent}, sharing all its blocks (copy on write), as sequence
     * {@code childId}: how {@code n > 1} samples share one prompt's prefill.
     */
    public Sequence fork(Sequence parent, long childId, long childArrival) {
        if (parent.status() != Sequence.Status.RUNNING) {
            throw new IllegalStateException("only a running sequence can fork: " + parent);
        }
        Sequence child = parent.forkAs(childId, childArrival);
        kv.fork(parent.id(), childId);
        child.setStatus(Sequence.Status.RUNNING);
        running.add(child);
        return child;
    }

    /** Ends {@code s} (finished or aborted), wherever it is, and frees its blocks. Idempotent. */
    public void finish(Sequence s) {
        if (s.status() == Sequence.Status.FINISHED) {
            return;
        }
        waiting.remove(s);
        running.remove(s);
        kv.free(s.id());
        s.dropDrafts(s.draftCount()); // an abort between drafting and verifying must not report drafts as output
        s.setStatus(Sequence.Status.FINISHED);
    }

    /**
     * Drops {@code s}'s cache and sends it back to waiting, to be recomputed from its tokens.
     * Public so tests (and a future memory-pressure policy) can preempt on purpose.
     */
    public void preempt(Sequence s) {
        if (s.status() != Sequence.Status.RUNNING) {
            throw new IllegalStateException("only a running sequence can be preempted: " + s);
        }
        running.remove(s);
        kv.free(s.id());
        s.preempted();
        waiting.add(s);
        preemptions++;
    }

    /** The next step; empty (no plan) when there is nothing to run. */
    public ScheduledStep schedule() {
        int budget = config.maxBatchedTokens();
        List<Sequence> scheduled = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        List<Sequence> preempted = new ArrayList<>();

        running.sort(ORDER);
        for (int i = 0; i < running.size() && budget > 0; i++) {
            Sequence s = running.get(i);
            int n = Math.min(s.length() - s.computed(), budget);
            if (n <= 0) {
                continue;
            }
            // NOTE: speculative drafts count against the budget like any token, and are verified
            // all in this step or not at all: drafts past the budget are dropped, not chunked.
            if (s.draftCount() > 0 && n < s.length() - s.computed()) {
                s.dropDrafts(Math.min(s.draftCount(), s.length() - s.computed() - n));
                n = s.length() - s.computed();
            }
            boolean fits = kv.ensureCapacity(s.id(), s.computed() + n, s.computed());
            if (!fits && s.draftCount() > 0) {
                // Short of blocks: give up the drafts before preempting anyone.
                s.dropDrafts(s.draftCount());
                n = Math.min(s.length() - s.computed(), budget);
                fits = kv.ensureCapacity(s.id(), s.computed() + n, s.computed());
            }
            while (!fits) {
                // NOTE: the victim is always at or after i (the list is in ORDER), so nothing already scheduled is lost.
                Sequence victim = running.getLast();
                preempt(victim);
                preempted.add(victim);
                if (victim == s) {
                    break;
                }
                fits = kv.ensureCapacity(s.id(), s.computed() + n, s.computed());
            }
            if (!fits) {
                break;
            }
            scheduled.add(s);
            counts.add(n);
            budget -= n;
        }

        while (preempted.isEmpty() && budget > 0 && running.size() < config.maxRunning() && !waiting.isEmpty()) {
            Sequence s = waiting.peek();
            int cached = kv.allocatePrompt(s.id(), s.tokenBuffer(), s.length());
            int n = Math.min(s.length() - cached, budget);
            if (!kv.ensureCapacity(s.id(), cached + n, cached)) {
                kv.free(s.id());
                break;
            }
            waiting.poll();
            s.admitted(cached);
            running.add(s);
            scheduled.add(s);
            counts.add(n);
            budget -= n;
        }
        return build(scheduled, counts, preempted);
    }

    private ScheduledStep build(List<Sequence> scheduled, List<Integer> counts, List<Sequence> preempted) {
        int b = scheduled.size();
        if (b == 0) {
            return new ScheduledStep(List.of(), new int[0], new int[0], new int[0], null, kv.drainCopies(), preempted);
        }
        int blockSize = kv.blockSize();
        int[] newTokens = new int[b];
        int[] seqStart = new int[b + 1];
        int[] tableStart = new int[b + 1];
        for (int i = 0; i < b; i++) {
            Sequence s = scheduled.get(i);
            newTokens[i] = counts.get(i);
            seqStart[i + 1] = seqStart[i] + newTokens[i];
            tableStart[i + 1] = tableStart[i] + kv.blocksFor(s.computed() + newTokens[i]);
        }
        int t = seqStart[b];
        int[] tokens = new int[t];
        int[] positions = new int[t];
        int[] slots = new int[t];
        int[] contextLen = new int[b];
        int[] blockTable = new int[tableStart[b]];
        int[] logitsRow = new int[b];
        int[] logitsCount = new int[b];
        int logits = 0;
        for (int i = 0; i < b; i++) {
            Sequence s = scheduled.get(i);
            int blocks = tableStart[i + 1] - tableStart[i];
            kv.copyBlockTable(s.id(), blocks, blockTable, tableStart[i]);
            contextLen[i] = s.computed();
            for (int j = 0; j < newTokens[i]; j++) {
                int row = seqStart[i] + j;
                int pos = s.computed() + j;
                tokens[row] = s.tokenBuffer()[pos];
                positions[row] = pos;
                slots[row] = blockTable[tableStart[i] + pos / blockSize] * blockSize + pos % blockSize;
            }
            boolean caughtUp = s.computed() + newTokens[i] == s.length();
            // A verify step needs logits after the token before the drafts and after each draft.
            logitsCount[i] = caughtUp ? 1 + s.draftCount() : 0;
            logitsRow[i] = caughtUp ? logits : -1;
            logits += logitsCount[i];
        }
        int[] logitsIndex = new int[logits];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < logitsCount[i]; j++) {
                logitsIndex[logitsRow[i] + j] = seqStart[i + 1] - logitsCount[i] + j;
            }
        }
        BatchPlan plan = new BatchPlan(tokens, positions, seqStart, contextLen, tableStart, blockTable, slots,
                logitsIndex, blockSize);
        return new ScheduledStep(List.copyOf(scheduled), newTokens, logitsRow, logitsCount, plan, kv.drainCopies(), preempted);
    }

    /** After the forward pass of {@code step}: its tokens are in the cache; full blocks join the prefix cache. */
    public void complete(ScheduledStep step) {
        for (int i = 0; i < step.sequences().size(); i++) {
            Sequence s = step.sequences().get(i);
            if (s.status() != Sequence.Status.RUNNING) {
                continue;
            }
            s.advance(step.newTokens()[i]);
            // Unverified drafts never enter the prefix cache.
            kv.markComputed(s.id(), s.tokenBuffer(), Math.min(s.computed(), s.length() - s.draftCount()));
        }
    }

    /**
     * After verifying {@code s}'s drafts: the first {@code accepted} stay as known, computed
     * tokens; the rest are dropped and the blocks past the new end are freed (rollback: their K/V
     * lie past the sequence's end, never read, and are overwritten when the sequence gets there).
     */
    public void resolveDrafts(Sequence s, int accepted) {
        s.keepDrafts(accepted);
        if (s.status() == Sequence.Status.RUNNING) {
            kv.truncate(s.id(), s.length());
            kv.markComputed(s.id(), s.tokenBuffer(), s.computed());
        }
    }
}
