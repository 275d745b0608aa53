package dev.lathe.core.backend;

import java.util.Arrays;

/**
 * One forward step over a ragged batch (DESIGN.md, "The batch plan"): plain int arrays, the same
 * on every backend. {@code T} new tokens from {@code B} sequences.
 *
 * @param tokens          {@code [T]} the new tokens of this step
 * @param positions       {@code [T]} each token's position in its sequence
 * @param seqStart        {@code [B+1]} CSR offsets of each sequence's tokens in {@code tokens}
 * @param contextLen      {@code [B]} tokens already in the KV cache for each sequence
 * @param blockTableStart {@code [B+1]} CSR offsets of each sequence's blocks in {@code blockTable}
 * @param blockTable      KV block ids, per sequence in position order
 * @param slotMapping     {@code [T]} cache slot ({@code block * blockSize + offset}) where each new
 *                        token's K and V are written
 * @param logitsIndex     rows of {@code tokens} that need logits (e.g. each sequence's last token)
 * @param blockSize       tokens per KV block
 */
public record BatchPlan(
        int[] tokens,
        int[] positions,
        int[] seqStart,
        int[] contextLen,
        int[] blockTableStart,
        int[] blockTable,
        int[] slotMapping,
        int[] logitsIndex,
        int blockSize) {

    public BatchPlan {
        int t = tokens.length;
        int b = contextLen.length;
        if (positions.length != t || slotMapping.length != t || seqStart.length != b + 1
                || blockTableStart.length != b + 1 || seqStart[b] != t || blockTableStart[b] != blockTable.length) {
            throw new IllegalArgumentException("inconsistent batch plan: " + t + " tokens, " + b + " sequences");
        }
        for (int i : logitsIndex) {
            if (i < 0 || i >= t) {
                throw new IllegalArgumentException("logits index " + i + " outside [0, " + t + ")");
            }
        }
    }

    public int tokenCount() {
        return tokens.length;
    }

    public int sequenceCount() {
        return contextLen.length;
    }

    /**
     * A plan for one sequence whose KV slots are {@code blockTable}'s blocks in order: {@code newTokens}
     * follow {@code contextLen} cached tokens; logits for the last new token only when {@code wantLogits}.
     */
    public static BatchPlan singleSequence(int[] newTokens, int contextLen, int[] blockTable, int blockSize,
                                           boolean wantLogits) {
        return singleSequence(newTokens, contextLen, blockTable, blockSize, wantLogits ? 1 : 0);
    }

    /**
     * As above, with logits for the last {@code logitRows} new tokens (all of them for a
     * speculative verify step: the token before the drafts, then each draft).
     */
    public static BatchPlan singleSequence(int[] newTokens, int contextLen, int[] blockTable, int blockSize,
                                           int logitRows) {
        int t = newTokens.length;
        if (logitRows < 0 || logitRows > t) {
            throw new IllegalArgumentException("logits for " + logitRows + " of " + t + " new tokens");
        }
        int[] positions = new int[t];
        int[] slots = new int[t];
        for (int i = 0; i < t; i++) {
            int pos = contextLen + i;
            positions[i] = pos;
            int blockIndex = pos / blockSize;
            if (blockIndex >= blockTable.length) {
                throw new IllegalArgumentException("position " + pos + " needs block " + blockIndex
                        + " but the sequence has " + blockTable.length + " blocks");
            }
            slots[i] = blockTable[blockIndex] * blockSize + pos % blockSize;
        }
        return new BatchPlan(newTokens.clone(), positions, new int[] {0, t}, new int[] {contextLen},
                new int[] {0, blockTable.length}, blockTable.clone(), slots,
                lastRows(t, logitRows), blockSize);
    }

    private static int[] lastRows(int tokens, int count) {
        int[] rows = new int[count];
        for (int i = 0; i < count; i++) {
            rows[i] = tokens - count + i;
        }
        return rows;
    }

    @Override
    public String toString() {
        return "BatchPlan[T=" + tokens.length + ", B=" + contextLen.length + ", contextLen=" + Arrays.toString(contextLen) + "]";
    }
}
