package dev.lathe.core.sched;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.kv.KvBlockManager;

import java.util.List;

/**
 * What one step runs: the plan for the forward pass and, per sequence in plan order, how many new
 * tokens it feeds and which logits row (if any) it samples from.
 *
 * @param sequences  the scheduled sequences, in the plan's order
 * @param newTokens  [B] tokens each feeds this step
 * @param logitsRow  [B] first row of the step's logits for the sequence, -1 in mid-prefill
 * @param logitsCount [B] rows of logits for the sequence: 1 for its next token, 1 + d when it
 *                   feeds d speculative drafts (row j: after the token before the drafts and j drafts), 0 in mid-prefill
 * @param plan       the ragged batch for {@code LlamaModel.forward}
 * @param copies     KV blocks to copy (copy on write) before the forward pass
 * @param preempted  sequences preempted while building this step (back in the waiting queue)
 */
public record ScheduledStep(List<Sequence> sequences, int[] newTokens, int[] logitsRow, int[] logitsCount, BatchPlan plan,
                            List<KvBlockManager.BlockCopy> copies, List<Sequence> preempted) {

    public boolean isEmpty() {
        return sequences.isEmpty();
    }

}
