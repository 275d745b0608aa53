package dev.lathe.cuda;

import dev.lathe.core.backend.BatchPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A ragged batch's plan for the attention parity tests: sequence s has context[s] cached tokens
 * and newTokens[s] new ones, its blocks drawn in shuffled order from a pool with 3 spare blocks.
 */
record PagedBatch(BatchPlan plan, int numBlocks, int tokens, int[] context, int[] newTokens) {
    static PagedBatch of(Random r, int blockSize, int[] context, int[] newTokens) {
        int sequences = context.length;
        int numBlocks = 3;
        for (int s = 0; s < sequences; s++) {
            numBlocks += (context[s] + newTokens[s] + blockSize - 1) / blockSize;
        }
        List<Integer> ids = new ArrayList<>();
        for (int b = 0; b < numBlocks; b++) {
            ids.add(b);
        }
        Collections.shuffle(ids, r);
        int tokens = Arrays.stream(newTokens).sum();
        int[] seqStart = new int[sequences + 1];
        int[] tableStart = new int[sequences + 1];
        List<Integer> table = new ArrayList<>();
        int[] positions = new int[tokens];
        int[] slots = new int[tokens];
        int next = 0;
        for (int s = 0; s < sequences; s++) {
            int blocks = (context[s] + newTokens[s] + blockSize - 1) / blockSize;
            tableStart[s] = table.size();
            for (int b = 0; b < blocks; b++) {
                table.add(ids.get(next++));
            }
            tableStart[s + 1] = table.size();
            seqStart[s + 1] = seqStart[s] + newTokens[s];
            for (int i = 0; i < newTokens[s]; i++) {
                int t = seqStart[s] + i;
                int pos = context[s] + i;
                positions[t] = pos;
                slots[t] = table.get(tableStart[s] + pos / blockSize) * blockSize + pos % blockSize;
            }
        }
        int[] blockTable = table.stream().mapToInt(Integer::intValue).toArray();
        BatchPlan plan = new BatchPlan(new int[tokens], positions, seqStart, context.clone(), tableStart, blockTable,
                slots, new int[0], blockSize);
        return new PagedBatch(plan, numBlocks, tokens, context, newTokens);
    }

    int slot(int s, int pos) {
        return plan.blockTable()[plan.blockTableStart()[s] + pos / plan.blockSize()] * plan.blockSize()
                + pos % plan.blockSize();
    }
}
