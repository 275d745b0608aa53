package dev.lathe.core.sched;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.kv.KvBlockManager;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The scheduler without a model: which sequences run, how many tokens each, and the plan's arrays. */
class SchedulerTest {
    private static int[] prompt(int length, int first) {
        int[] p = new int[length];
        for (int i = 0; i < length; i++) {
            p[i] = first + i;
        }
        return p;
    }

    /** Runs a step as the engine would: complete it, and append a token to every sequence that caught up. */
    private static ScheduledStep step(Scheduler s) {
        ScheduledStep step = s.schedule();
        s.complete(step);
        for (int i = 0; i < step.sequences().size(); i++) {
            if (step.logitsRow()[i] >= 0) {
                step.sequences().get(i).append(7);
            }
        }
        return step;
    }

    @Test
    void chunkedPrefillShareTheBudgetWithRunningDecodes() {
        Scheduler s = new Scheduler(new KvBlockManager(64, 4, true), new SchedulerConfig(8, 4));
        Sequence a = new Sequence(1, 0, 0, prompt(3, 100), 20);
        Sequence b = new Sequence(2, 0, 1, prompt(13, 200), 20);
        s.add(a);
        s.add(b);

        ScheduledStep first = step(s);
        assertEquals(List.of(a, b), first.sequences());
        assertArrayEquals(new int[] {3, 5}, first.newTokens()); // a's whole prompt, then 5 of b's 13
        assertArrayEquals(new int[] {0, -1}, first.logitsRow());
        BatchPlan plan = first.plan();
        assertArrayEquals(new int[] {0, 3, 8}, plan.seqStart());
        assertArrayEquals(new int[] {0, 1, 2, 0, 1, 2, 3, 4}, plan.positions());
        assertArrayEquals(new int[] {2}, plan.logitsIndex());
        assertArrayEquals(new int[] {0, 1, 3}, plan.blockTableStart());
        int[] table = plan.blockTable();
        assertEquals(table[1] * 4 + 0, plan.slotMapping()[3]);
        assertEquals(table[2] * 4 + 0, plan.slotMapping()[7]); // b's position 4 opens its second block

        ScheduledStep second = step(s);
        assertArrayEquals(new int[] {1, 7}, second.newTokens()); // a decodes one token, b gets the rest of the budget
        assertArrayEquals(new int[] {3, 5}, second.plan().contextLen());
        ScheduledStep third = step(s);
        assertArrayEquals(new int[] {1, 1}, third.newTokens()); // b's last prompt token: its first logits
        assertArrayEquals(new int[] {0, 1}, third.logitsRow());
        assertNull(s.kv().checkInvariant());
    }

    @Test
    void draftsCountAgainstTheBudgetAreTrimmedToFitAndRollBackCleanly() {
        Scheduler s = new Scheduler(new KvBlockManager(64, 4, true), new SchedulerConfig(7, 4));
        Sequence a = new Sequence(1, 0, 0, prompt(3, 100), 30);
        Sequence b = new Sequence(2, 0, 1, prompt(2, 200), 30);
        s.add(a);
        s.add(b);
        step(s); // both prompts; each gets a token
        a.appendDrafts(new int[] {1, 2, 3});
        b.appendDrafts(new int[] {4, 5, 6});
        ScheduledStep verify = s.schedule();
        // a: its last token + 3 drafts = 4 tokens; b: the 3 left of the budget = its last token + 2 drafts.
        assertArrayEquals(new int[] {4, 3}, verify.newTokens());
        assertEquals(2, b.draftCount());
        assertArrayEquals(new int[] {0, 4}, verify.logitsRow());
        assertArrayEquals(new int[] {4, 3}, verify.logitsCount());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6}, verify.plan().logitsIndex());
        s.complete(verify);
        assertEquals(7, a.computed()); // 3 prompt + 1 token + 3 drafts
        // a keeps 1 of its 3 drafts: 5 known tokens, all computed; its third block (positions 8..) is freed.
        s.resolveDrafts(a, 1);
        assertEquals(5, a.length());
        assertEquals(5, a.computed());
        assertEquals(0, a.draftCount());
        assertEquals(2, s.kv().blockTable(a.id()).length);
        s.resolveDrafts(b, 0);
        assertEquals(3, b.length());
        assertNull(s.kv().checkInvariant());
        // Finished (aborted) with unverified drafts: they are not part of its output.
        a.appendDrafts(new int[] {8, 9});
        s.finish(a);
        assertEquals(5, a.length());
        assertEquals(0, a.draftCount());
    }

    @Test
    void admissionFollowsPriorityThenArrivalAndRespectsTheRunningCap() {
        Scheduler s = new Scheduler(new KvBlockManager(64, 4, true), new SchedulerConfig(100, 2));
        Sequence low = new Sequence(1, 0, 0, prompt(2, 10), 8);
        Sequence high = new Sequence(2, 5, 1, prompt(2, 20), 8);
        Sequence highLater = new Sequence(3, 5, 2, prompt(2, 30), 8);
        s.add(low);
        s.add(high);
        s.add(highLater);
        assertEquals(List.of(high, highLater), step(s).sequences());
        s.finish(high);
        assertEquals(List.of(highLater, low), step(s).sequences());
        assertEquals(0, s.waitingCount());
    }

    @Test
    void outOfBlocksPreemptsTheLeastImportantLatestSequenceAndResumesItLater() {
        // 4 blocks of 2 tokens; two sequences of 3 prompt tokens hold 2 blocks each.
        Scheduler s = new Scheduler(new KvBlockManager(4, 2, true), new SchedulerConfig(16, 4));
        Sequence older = new Sequence(1, 0, 0, prompt(3, 10), 10);
        Sequence newer = new Sequence(2, 0, 1, prompt(3, 20), 10);
        s.add(older);
        s.add(newer);
        step(s);
        step(s); // both now hold 4 tokens in 2 blocks: the pool is full
        ScheduledStep third = step(s);
        assertEquals(List.of(newer), third.preempted());
        assertEquals(List.of(older), third.sequences());
        assertEquals(Sequence.Status.WAITING, newer.status());
        assertEquals(0, newer.computed());
        assertEquals(1, newer.preemptions());
        s.finish(older);
        ScheduledStep resumed = s.schedule();
        assertSame(newer, resumed.sequences().getFirst());
        // Recomputed from its tokens, of which the first full block came back from the prefix cache.
        assertEquals(2, resumed.plan().contextLen()[0]);
        assertEquals(newer.length() - 2, resumed.newTokens()[0]);
        assertTrue(newer.prefixHitTokens() >= 2);
        assertNull(s.kv().checkInvariant());
    }
}
