package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.BatchPlan;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A prefill of three sequences of 23, 1 and 41 tokens in one ragged batch (so every causal length
 * 1..41 occurs), their blocks drawn in shuffled order from a pool with three blocks to spare: the
 * plan the KV-cache attention tests run.
 *
 * @param tokens    tokens in the batch (65)
 * @param numBlocks blocks the cache needs
 * @param slots     [tokens] cache slot of each token
 * @param seqStart  [4] CSR offsets of the sequences' tokens
 * @param plan      the batch plan
 */
record RaggedPrefill(int tokens, int numBlocks, int[] slots, int[] seqStart, BatchPlan plan) {

    static RaggedPrefill of(Random r, int blockSize) {
        int[] lengths = {23, 1, 41};
        int tokens = 0;
        int blocksNeeded = 0;
        for (int len : lengths) {
            tokens += len;
            blocksNeeded += (len + blockSize - 1) / blockSize;
        }
        int numBlocks = blocksNeeded + 3;
        List<Integer> free = new ArrayList<>();
        for (int b = 0; b < numBlocks; b++) {
            free.add(b);
        }
        Collections.shuffle(free, r);
        int[] positions = new int[tokens];
        int[] slots = new int[tokens];
        int[] seqStart = new int[lengths.length + 1];
        int[] tableStart = new int[lengths.length + 1];
        int[] table = new int[blocksNeeded];
        int[] logitsIndex = new int[lengths.length];
        int t = 0;
        for (int s = 0; s < lengths.length; s++) {
            int blocks = (lengths[s] + blockSize - 1) / blockSize;
            for (int b = 0; b < blocks; b++) {
                table[tableStart[s] + b] = free.remove(free.size() - 1);
            }
            tableStart[s + 1] = tableStart[s] + blocks;
            for (int pos = 0; pos < lengths[s]; pos++, t++) {
                positions[t] = pos;
                slots[t] = table[tableStart[s] + pos / blockSize] * blockSize + pos % blockSize;
            }
            seqStart[s + 1] = t;
            logitsIndex[s] = t - 1;
        }
        BatchPlan plan = new BatchPlan(new int[tokens], positions, seqStart, new int[lengths.length], tableStart, table,
                slots, logitsIndex, blockSize);
        return new RaggedPrefill(tokens, numBlocks, slots, seqStart, plan);
    }

    /** The first token of the sequence token {@code t} belongs to (its causal window starts there). */
    int sequenceStart(int t) {
        int s = 0;
        while (t >= seqStart[s + 1]) {
            s++;
        }
        return seqStart[s];
    }
}
