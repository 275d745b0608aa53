package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.BatchPlan;
import org.junit.jupiter.api.Test;

/** The flash prefill dispatch, without a GPU: switch, shapes, grid sizing and which batches go to it. */
class FlashPrefillTest {
    private static final int BLOCK = 16;

    /** A batch of sequences with these new-token counts after these cached tokens, blocks numbered in order. */
    private static BatchPlan plan(int[] context, int[] newTokens) {
        int b = context.length;
        int tokens = 0;
        for (int n : newTokens) {
            tokens += n;
        }
        int[] seqStart = new int[b + 1];
        int[] tableStart = new int[b + 1];
        int[] positions = new int[tokens];
        int[] slots = new int[tokens];
        int blocks = 0;
        for (int s = 0; s < b; s++) {
            seqStart[s + 1] = seqStart[s] + newTokens[s];
            tableStart[s + 1] = tableStart[s] + (context[s] + newTokens[s] + BLOCK - 1) / BLOCK;
            for (int i = 0; i < newTokens[s]; i++) {
                int pos = context[s] + i;
                positions[seqStart[s] + i] = pos;
                slots[seqStart[s] + i] = (tableStart[s] + pos / BLOCK) * BLOCK + pos % BLOCK;
            }
            blocks = tableStart[s + 1];
        }
        int[] table = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            table[i] = i;
        }
        return new BatchPlan(new int[tokens], positions, seqStart, context.clone(), tableStart, table, slots,
                new int[0], BLOCK);
    }

    @Test
    void switchIsParsedLikeTheGraphsSwitch() {
        assertEquals("lathe.cuda.flashPrefill", FlashPrefill.PROPERTY);
        assertEquals("LATHE_CUDA_FLASH_PREFILL", FlashPrefill.ENVIRONMENT);
        String saved = System.getProperty(FlashPrefill.PROPERTY);
        try {
            System.setProperty(FlashPrefill.PROPERTY, "on");
            assertTrue(FlashPrefill.enabled());
            System.setProperty(FlashPrefill.PROPERTY, "OFF");
            assertFalse(FlashPrefill.enabled());
            System.setProperty(FlashPrefill.PROPERTY, "maybe");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, FlashPrefill::enabled);
            assertTrue(e.getMessage().contains("-Dlathe.cuda.flashPrefill=maybe"), e.getMessage());
            System.clearProperty(FlashPrefill.PROPERTY);
            // Unset property: the environment decides, on when it is unset too (as in CI).
            String env = System.getenv(FlashPrefill.ENVIRONMENT);
            if (env == null) {
                assertTrue(FlashPrefill.enabled());
            }
        } finally {
            if (saved == null) {
                System.clearProperty(FlashPrefill.PROPERTY);
            } else {
                System.setProperty(FlashPrefill.PROPERTY, saved);
            }
        }
    }

    @Test
    void supportsHeadDims64And128WithGroupsUpToATile() {
        for (int headDim : new int[] {64, 128}) {
            for (int group : new int[] {1, 3, 4, 8, 64}) {
                assertTrue(FlashPrefill.supports(headDim, group), headDim + " " + group);
            }
            assertFalse(FlashPrefill.supports(headDim, 65));
            assertFalse(FlashPrefill.supports(headDim, 0));
        }
        for (int headDim : new int[] {8, 32, 80, 96, 256}) {
            assertFalse(FlashPrefill.supports(headDim, 1), "headDim " + headDim);
        }
    }

    @Test
    void tilesHoldWholeTokensOfTheGroup() {
        assertEquals(64, FlashPrefill.tileTokens(1));
        assertEquals(16, FlashPrefill.tileTokens(4));
        assertEquals(8, FlashPrefill.tileTokens(8));
        assertEquals(21, FlashPrefill.tileTokens(3)); // 63 of 64 rows used
        assertEquals(1, FlashPrefill.tileTokens(64));
        assertEquals(1, FlashPrefill.tiles(1, 1));
        assertEquals(1, FlashPrefill.tiles(64, 1));
        assertEquals(2, FlashPrefill.tiles(65, 1));
        assertEquals(5, FlashPrefill.tiles(257, 1));
        assertEquals(13, FlashPrefill.tiles(100, 8));
        assertEquals(7, FlashPrefill.tiles(100, 4));
        assertEquals(5, FlashPrefill.tiles(100, 3));
        assertEquals(100, FlashPrefill.tiles(100, 64));
        // Every token of a chunk lies in some tile, and the last tile is not empty.
        for (int group : new int[] {1, 3, 4, 8, 64}) {
            for (int n : new int[] {1, 17, 64, 100, 257, 2048}) {
                int tiles = FlashPrefill.tiles(n, group);
                assertTrue((long) tiles * FlashPrefill.tileTokens(group) >= n);
                assertTrue((long) (tiles - 1) * FlashPrefill.tileTokens(group) < n);
                assertTrue(FlashPrefill.tileTokens(group) * group <= FlashPrefill.TILE_ROWS);
            }
        }
    }

    @Test
    void longestChunkIsTheMostNewTokensOfASequence() {
        assertEquals(17, FlashPrefill.longestChunk(plan(new int[] {0}, new int[] {17})));
        assertEquals(100, FlashPrefill.longestChunk(plan(new int[] {5, 300, 0}, new int[] {1, 100, 3})));
        assertEquals(0, FlashPrefill.longestChunk(plan(new int[] {4}, new int[] {0})));
    }

    @Test
    void prefillHeavyStepsGoToTheFlashKernel() {
        BatchPlan prompt = plan(new int[] {0}, new int[] {512});
        assertTrue(FlashPrefill.worthIt(prompt, 64, 4));
        assertTrue(FlashPrefill.worthIt(prompt, 128, 8));
        assertFalse(FlashPrefill.worthIt(prompt, 32, 4), "no kernel for headDim 32");
        assertFalse(FlashPrefill.worthIt(prompt, 64, 65), "group over a tile");
        // A chunk at the threshold goes, one under does not.
        assertTrue(FlashPrefill.worthIt(plan(new int[] {300}, new int[] {FlashPrefill.MIN_CHUNK_TOKENS}), 64, 1));
        assertFalse(FlashPrefill.worthIt(plan(new int[] {300}, new int[] {FlashPrefill.MIN_CHUNK_TOKENS - 1}), 64, 1));
        // Decode steps and speculative verify steps stay on the paged kernel.
        assertFalse(FlashPrefill.worthIt(plan(new int[] {40, 7, 300}, new int[] {1, 1, 1}), 64, 4));
        assertFalse(FlashPrefill.worthIt(plan(new int[] {40}, new int[] {5}), 64, 4));
        // Mixed steps: the long chunks' tokens must be at least half of the step.
        int[] contexts = new int[41];
        int[] counts = new int[41];
        for (int i = 0; i < 40; i++) {
            contexts[i] = 10 + i;
            counts[i] = 1;
        }
        contexts[40] = 0;
        counts[40] = 40;
        assertTrue(FlashPrefill.worthIt(plan(contexts, counts), 64, 4), "40 prefill tokens, 40 decode tokens");
        counts[40] = 39;
        assertFalse(FlashPrefill.worthIt(plan(contexts, counts), 64, 4), "39 prefill tokens, 40 decode tokens");
        assertFalse(FlashPrefill.worthIt(plan(new int[] {3}, new int[] {0}), 64, 4), "no tokens");
    }
}
