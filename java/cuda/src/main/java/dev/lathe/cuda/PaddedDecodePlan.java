package dev.lathe.cuda;

import dev.lathe.core.backend.BatchPlan;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The fixed-shape batch plan a decode-step graph is captured with, and its byte layout in the
 * pinned staging buffer the graph's first node copies to the device. Its arrays are allocated
 * once and refilled in place from each real plan ({@link #fill}), so the ops recorded against
 * them (by identity: {@link #offsetOf}) read the new step's contents when the graph replays.
 *
 * <p>{@code batch} sequences of one token each: the real plan's B sequences first, then padding
 * sequences (token 0 at position 0, K/V written to slot 0 of the sink block, attending to it
 * alone). Every sequence owns {@code blocksPerSequence} block-table entries at a fixed stride,
 * its own blocks first and then the sink block, so {@code blockTableStart} never changes; logits
 * are computed for every row, the first B being the real ones.
 */
final class PaddedDecodePlan {
    /** Each array starts on a 16-byte boundary of the staging buffer. */
    static final int ALIGN = 16;

    final int batch;
    final int contextBound;
    final int blockSize;
    final int blocksPerSequence;
    final int sinkBlock;
    final BatchPlan plan;

    // Byte offsets of each array in the packed buffer, in this order.
    final long tokensOffset;
    final long positionsOffset;
    final long seqStartOffset;
    final long contextLenOffset;
    final long blockTableStartOffset;
    final long blockTableOffset;
    final long slotMappingOffset;
    final long logitsIndexOffset;
    final long bytes;

    private final int[][] arrays;
    private final long[] offsets;

    PaddedDecodePlan(int batch, int contextBound, int blockSize, int sinkBlock) {
        if (batch < 1 || blockSize < 1 || contextBound < 1 || contextBound % blockSize != 0 || sinkBlock < 0) {
            throw new IllegalArgumentException("padded plan of " + batch + " sequences, bound " + contextBound
                    + ", block size " + blockSize + ", sink block " + sinkBlock + " is invalid");
        }
        this.batch = batch;
        this.contextBound = contextBound;
        this.blockSize = blockSize;
        this.blocksPerSequence = contextBound / blockSize;
        this.sinkBlock = sinkBlock;
        int[] seqStart = new int[batch + 1];
        int[] tableStart = new int[batch + 1];
        int[] logitsIndex = new int[batch];
        for (int s = 0; s <= batch; s++) {
            seqStart[s] = s;
            tableStart[s] = s * blocksPerSequence;
            if (s < batch) {
                logitsIndex[s] = s;
            }
        }
        int[] table = new int[Math.multiplyExact(batch, blocksPerSequence)];
        Arrays.fill(table, sinkBlock);
        int[] slots = new int[batch];
        Arrays.fill(slots, sinkBlock * blockSize);
        this.plan = new BatchPlan(new int[batch], new int[batch], seqStart, new int[batch], tableStart, table, slots,
                logitsIndex, blockSize);
        this.arrays = new int[][] {plan.tokens(), plan.positions(), plan.seqStart(), plan.contextLen(),
                plan.blockTableStart(), plan.blockTable(), plan.slotMapping(), plan.logitsIndex()};
        this.offsets = new long[arrays.length];
        long at = 0;
        for (int i = 0; i < arrays.length; i++) {
            offsets[i] = at;
            at = align(at + 4L * arrays[i].length);
        }
        tokensOffset = offsets[0];
        positionsOffset = offsets[1];
        seqStartOffset = offsets[2];
        contextLenOffset = offsets[3];
        blockTableStartOffset = offsets[4];
        blockTableOffset = offsets[5];
        slotMappingOffset = offsets[6];
        logitsIndexOffset = offsets[7];
        bytes = at;
    }

    static long align(long bytes) {
        return (bytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    /**
     * A plan this graph shape can run: every sequence has exactly one new token and wants logits
     * for it, in order (a decode step; prefill chunks and speculative verify steps do not).
     */
    static boolean isDecode(BatchPlan p) {
        int b = p.sequenceCount();
        if (b < 1 || p.tokenCount() != b || p.logitsIndex().length != b) {
            return false;
        }
        for (int s = 0; s < b; s++) {
            if (p.seqStart()[s] != s || p.logitsIndex()[s] != s) {
                return false;
            }
        }
        return true;
    }

    /** The longest causal window of the step: max position + 1. */
    static int window(BatchPlan p) {
        int w = 1;
        for (int pos : p.positions()) {
            w = Math.max(w, pos + 1);
        }
        return w;
    }

    /** Whether {@code real} (a decode plan) fits this shape: few enough sequences, windows within the bound. */
    boolean fits(BatchPlan real) {
        return real.sequenceCount() <= batch && window(real) <= contextBound && real.blockSize() == blockSize;
    }

    /**
     * Copies {@code real}'s sequences into the fixed arrays and resets the padding ones. Each real
     * sequence's blocks beyond those its window needs are not copied (they are never read).
     */
    void fill(BatchPlan real) {
        if (!isDecode(real) || !fits(real)) {
            throw new IllegalArgumentException(real + " does not fit a decode graph of " + batch
                    + " one-token sequences with windows up to " + contextBound + " (block size " + blockSize + ")");
        }
        int b = real.sequenceCount();
        int[] table = plan.blockTable();
        for (int s = 0; s < batch; s++) {
            int tableAt = s * blocksPerSequence;
            if (s < b) {
                int pos = real.positions()[s];
                int own = real.blockTableStart()[s + 1] - real.blockTableStart()[s];
                int needed = pos / blockSize + 1;
                if (pos < 0 || needed > own) {
                    throw new IllegalArgumentException("token " + s + " at position " + pos + " needs block "
                            + (pos / blockSize) + " but sequence " + s + " has " + own + " blocks");
                }
                plan.tokens()[s] = real.tokens()[s];
                plan.positions()[s] = pos;
                plan.contextLen()[s] = real.contextLen()[s];
                plan.slotMapping()[s] = real.slotMapping()[s];
                System.arraycopy(real.blockTable(), real.blockTableStart()[s], table, tableAt, needed);
                Arrays.fill(table, tableAt + needed, tableAt + blocksPerSequence, sinkBlock);
            } else {
                plan.tokens()[s] = 0;
                plan.positions()[s] = 0;
                plan.contextLen()[s] = 0;
                plan.slotMapping()[s] = sinkBlock * blockSize;
                Arrays.fill(table, tableAt, tableAt + blocksPerSequence, sinkBlock);
            }
        }
    }

    /** Byte offset of {@code array} in the packed buffer when it is one of this plan's arrays (by identity), else -1. */
    long offsetOf(int[] array) {
        for (int i = 0; i < arrays.length; i++) {
            if (arrays[i] == array) {
                return offsets[i];
            }
        }
        return -1;
    }

    /** Writes every array at its offset ({@code staging} holds at least {@link #bytes}). */
    void pack(MemorySegment staging) {
        for (int i = 0; i < arrays.length; i++) {
            MemorySegment.copy(arrays[i], 0, staging, ValueLayout.JAVA_INT_UNALIGNED, offsets[i], arrays[i].length);
        }
    }
}
