package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The host side of decode-step graphs, without a GPU: batch buckets and context bounds, the
 * padded plan (what it copies, where the padding writes, the packed layout the graph's first
 * node copies), the graph cache's eviction, and the on/off switch.
 */
class DecodeGraphBookkeepingTest {
    private static final int BS = 16;

    @Test
    void batchBucketsArePowersOfTwoUpToTheLargest() {
        DecodeBuckets b = new DecodeBuckets(64, 256);
        int[] sequences = {1, 2, 3, 4, 5, 8, 9, 17, 33, 63, 64};
        int[] buckets = {1, 2, 4, 4, 8, 8, 16, 32, 64, 64, 64};
        for (int i = 0; i < sequences.length; i++) {
            assertEquals(buckets[i], b.batchBucket(sequences[i]), sequences[i] + " sequences");
        }
        assertEquals(-1, b.batchBucket(65));
        assertEquals(-1, b.batchBucket(0));
        assertThrows(IllegalArgumentException.class, () -> new DecodeBuckets(48, 256));
    }

    @Test
    void contextBoundsGrowByPowersOfTwoInWholeBlocksWithinTheCache() {
        DecodeBuckets b = new DecodeBuckets(64, 256);
        assertEquals(256, b.contextBound(1, BS, 1000));
        assertEquals(256, b.contextBound(256, BS, 1000));
        assertEquals(512, b.contextBound(257, BS, 1000));
        assertEquals(4096, b.contextBound(4000, BS, 1000));
        assertEquals(288, b.contextBound(256, 48, 1000), "rounded up to whole blocks of 48");
        assertEquals(320, b.contextBound(300, BS, 20), "never more than the cache's 20 blocks hold");
        assertEquals(400, b.contextBound(400, BS, 20), "never under the window itself");
        // Every bound covers its window and is a whole number of blocks.
        for (int window = 1; window < 5000; window += 37) {
            int bound = b.contextBound(window, 24, 300);
            assertTrue(bound >= window && bound % 24 == 0, window + " -> " + bound);
        }
    }

    @Test
    void decodePlansAreOneTokenPerSequenceWithLogitsForEach() {
        int[] table = {3, 1, 2};
        assertTrue(PaddedDecodePlan.isDecode(BatchPlan.singleSequence(new int[] {7}, 20, table, BS, true)));
        assertFalse(PaddedDecodePlan.isDecode(BatchPlan.singleSequence(new int[] {7, 8}, 20, table, BS, true)),
                "two tokens: prefill or verify");
        assertFalse(PaddedDecodePlan.isDecode(BatchPlan.singleSequence(new int[] {7}, 20, table, BS, false)),
                "no logits wanted");
        assertEquals(21, PaddedDecodePlan.window(BatchPlan.singleSequence(new int[] {7}, 20, table, BS, true)));
    }

    // Three sequences of 2, 1 and 4 blocks (more than they need), at positions 17, 3 and 40.
    private static BatchPlan threeSequences() {
        int[] positions = {17, 3, 40};
        int[][] tables = {{9, 4}, {6}, {0, 8, 2, 11}};
        int[] table = {9, 4, 6, 0, 8, 2, 11};
        int[] tableStart = {0, 2, 3, 7};
        int[] slots = new int[3];
        for (int s = 0; s < 3; s++) {
            slots[s] = tables[s][positions[s] / BS] * BS + positions[s] % BS;
        }
        return new BatchPlan(new int[] {11, 12, 13}, positions, new int[] {0, 1, 2, 3}, new int[] {17, 3, 40},
                tableStart, table, slots, new int[] {0, 1, 2}, BS);
    }

    @Test
    void fillCopiesTheRealSequencesAndSendsThePaddingToTheSink() {
        PaddedDecodePlan p = new PaddedDecodePlan(4, 64, BS, 12);
        BatchPlan real = threeSequences();
        p.fill(real);
        BatchPlan f = p.plan;
        assertEquals(4, p.blocksPerSequence);
        assertArrayEquals(new int[] {11, 12, 13, 0}, f.tokens());
        assertArrayEquals(new int[] {17, 3, 40, 0}, f.positions());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4}, f.seqStart());
        assertArrayEquals(new int[] {0, 4, 8, 12, 16}, f.blockTableStart());
        assertArrayEquals(new int[] {0, 1, 2, 3}, f.logitsIndex());
        assertArrayEquals(new int[] {9, 4, 12, 12, 6, 12, 12, 12, 0, 8, 2, 12, 12, 12, 12, 12}, f.blockTable(),
                "own blocks up to the window, then the sink; sequence 2's fourth block is past its window");
        assertArrayEquals(new int[] {real.slotMapping()[0], real.slotMapping()[1], real.slotMapping()[2], 12 * BS},
                f.slotMapping(), "the padding writes slot 0 of the sink block");
        // Every position of every real window finds the same slot through either plan.
        for (int s = 0; s < 3; s++) {
            for (int pos = 0; pos <= real.positions()[s]; pos++) {
                int want = real.blockTable()[real.blockTableStart()[s] + pos / BS];
                int got = f.blockTable()[f.blockTableStart()[s] + pos / BS];
                assertEquals(want, got, "sequence " + s + " position " + pos);
            }
        }
    }

    @Test
    void refillingKeepsTheArraysAndResetsPaddingFromALargerBatch() {
        PaddedDecodePlan p = new PaddedDecodePlan(4, 64, BS, 12);
        int[] positions = p.plan.positions();
        int[] table = p.plan.blockTable();
        p.fill(threeSequences());
        p.fill(BatchPlan.singleSequence(new int[] {5}, 30, new int[] {7, 3}, BS, true));
        assertSame(positions, p.plan.positions(), "the recorded ops hold these arrays: refilled in place");
        assertSame(table, p.plan.blockTable());
        assertArrayEquals(new int[] {30, 0, 0, 0}, p.plan.positions());
        assertArrayEquals(new int[] {5, 0, 0, 0}, p.plan.tokens());
        assertArrayEquals(new int[] {7, 3, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12}, p.plan.blockTable());
        assertArrayEquals(new int[] {3 * BS + 14, 12 * BS, 12 * BS, 12 * BS}, p.plan.slotMapping());
    }

    @Test
    void fillRefusesWhatTheShapeCannotHold() {
        PaddedDecodePlan p = new PaddedDecodePlan(2, 32, BS, 12);
        assertFalse(p.fits(threeSequences()), "three sequences in a bucket of two");
        assertThrows(IllegalArgumentException.class, () -> p.fill(threeSequences()));
        BatchPlan past = BatchPlan.singleSequence(new int[] {1}, 32, new int[] {1, 2, 3}, BS, true);
        assertFalse(p.fits(past), "window 33 past the bound 32");
        assertThrows(IllegalArgumentException.class, () -> p.fill(past));
        BatchPlan shortTable = new BatchPlan(new int[] {1}, new int[] {20}, new int[] {0, 1}, new int[] {20},
                new int[] {0, 1}, new int[] {4}, new int[] {0}, new int[] {0}, BS);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.fill(shortTable));
        assertTrue(e.getMessage().contains("needs block 1"), e.getMessage());
        assertFalse(p.fits(BatchPlan.singleSequence(new int[] {1}, 3, new int[] {1}, 8, true)), "other block size");
    }

    @Test
    void packedLayoutIsAlignedDisjointAndHoldsEachArray() {
        Random r = TestRandom.create("DecodeGraphBookkeepingTest.packed");
        int batch = 1 << r.nextInt(6);
        int bound = BS * (1 + r.nextInt(40));
        PaddedDecodePlan p = new PaddedDecodePlan(batch, bound, BS, 99);
        BatchPlan f = p.plan;
        int[][] arrays = {f.tokens(), f.positions(), f.seqStart(), f.contextLen(), f.blockTableStart(), f.blockTable(),
                f.slotMapping(), f.logitsIndex()};
        long[] offsets = {p.tokensOffset, p.positionsOffset, p.seqStartOffset, p.contextLenOffset,
                p.blockTableStartOffset, p.blockTableOffset, p.slotMappingOffset, p.logitsIndexOffset};
        long end = 0;
        for (int i = 0; i < arrays.length; i++) {
            assertEquals(0, offsets[i] % PaddedDecodePlan.ALIGN, "array " + i + " aligned");
            assertTrue(offsets[i] >= end, "array " + i + " starts after the previous one ends");
            assertEquals(offsets[i], p.offsetOf(arrays[i]), "offsetOf by identity");
            end = offsets[i] + 4L * arrays[i].length;
        }
        assertTrue(p.bytes >= end && p.bytes % PaddedDecodePlan.ALIGN == 0);
        assertEquals(-1, p.offsetOf(f.positions().clone()), "an equal array that is not the plan's");
        for (int i = 0; i < batch; i++) {
            f.tokens()[i] = r.nextInt(1000);
            f.positions()[i] = r.nextInt(bound);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(p.bytes);
            staging.fill((byte) 0x5a); // poisoned: every array element must be overwritten
            p.pack(staging);
            for (int i = 0; i < arrays.length; i++) {
                for (int j = 0; j < arrays[i].length; j++) {
                    assertEquals(arrays[i][j], staging.get(ValueLayout.JAVA_INT_UNALIGNED, offsets[i] + 4L * j),
                            "array " + i + " element " + j);
                }
            }
        }
    }

    private static final class Closeable implements AutoCloseable {
        final String name;
        final List<String> closed;

        Closeable(String name, List<String> closed) {
            this.name = name;
            this.closed = closed;
        }

        @Override
        public void close() {
            closed.add(name);
        }
    }

    @Test
    void graphCacheClosesWhatItReplacesEvictsAndClears() {
        List<String> closed = new ArrayList<>();
        GraphCache<String, Closeable> cache = new GraphCache<>(2);
        cache.put("a", new Closeable("a1", closed));
        cache.put("b", new Closeable("b1", closed));
        assertEquals("a1", cache.get("a").name); // a is now the most recently used
        cache.put("c", new Closeable("c1", closed));
        assertEquals(List.of("b1"), closed, "the least recently used goes");
        assertNull(cache.get("b"));
        cache.put("a", new Closeable("a2", closed));
        assertEquals(List.of("b1", "a1"), closed, "a recapture closes the graph it replaces");
        cache.remove("c");
        assertEquals(List.of("b1", "a1", "c1"), closed);
        cache.clear();
        assertEquals(List.of("b1", "a1", "c1", "a2"), closed);
        assertEquals(0, cache.size());
    }

    @Test
    void theSwitchIsOnUnlessTurnedOff() {
        assertTrue(CudaSwitch.parse(null, "x"));
        assertTrue(CudaSwitch.parse(" ", "x"));
        assertTrue(CudaSwitch.parse("on", "x"));
        assertTrue(CudaSwitch.parse("1", "x"));
        assertTrue(CudaSwitch.parse("TRUE", "x"));
        assertFalse(CudaSwitch.parse("off", "x"));
        assertFalse(CudaSwitch.parse("0", "x"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CudaSwitch.parse("sometimes", "LATHE_CUDA_GRAPHS"));
        assertTrue(e.getMessage().contains("LATHE_CUDA_GRAPHS=sometimes"), e.getMessage());
    }
}
