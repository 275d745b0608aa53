package dev.lathe.core.kv;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvBlockManagerTest {
    private static final int[] PROMPT = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

    @Test
    void aFinishedPromptIsReusedByTheNextRequestUpToItsLastFullBlock() {
        KvBlockManager m = new KvBlockManager(8, 4, true);
        assertEquals(0, m.allocatePrompt(1, PROMPT, PROMPT.length));
        assertTrue(m.ensureCapacity(1, PROMPT.length, 0));
        m.markComputed(1, PROMPT, PROMPT.length);
        int[] first = m.blockTable(1);
        m.free(1);
        assertEquals(new KvUsage(0, 2, 6, 8, 0), m.usage()); // two full blocks cached, the partial one freed

        assertEquals(8, m.allocatePrompt(2, PROMPT, PROMPT.length));
        assertArrayEquals(new int[] {first[0], first[1]}, m.blockTable(2));
        // A prompt of exactly two blocks reuses only the first: its last token must be computed.
        assertEquals(4, m.allocatePrompt(3, PROMPT, 8));
        assertEquals(12, m.prefixHitTokens());
        assertNull(m.checkInvariant());
    }

    @Test
    void cachedBlocksAreEvictedLeastRecentlyReleasedFirstAndOnlyWhenNeeded() {
        KvBlockManager m = new KvBlockManager(3, 2, true);
        int[] a = {1, 2, 3};
        m.allocatePrompt(1, a, 3);
        m.ensureCapacity(1, 3, 0);
        m.markComputed(1, a, 3);
        m.free(1); // block of {1,2} cached, the partial block free
        assertEquals(1, m.usage().cached());
        m.allocatePrompt(2, new int[] {7, 8, 9, 9, 9}, 5);
        assertTrue(m.ensureCapacity(2, 4, 0)); // two free blocks: the cached one survives
        assertEquals(1, m.usage().cached());
        assertTrue(m.ensureCapacity(2, 5, 4)); // the third block comes from evicting it
        assertEquals(new KvUsage(3, 0, 0, 3, 1), m.usage());
        assertFalse(m.ensureCapacity(2, 7, 5)); // nothing left: all or nothing
        assertEquals(3, m.blockTable(2).length);
        assertNull(m.checkInvariant());
    }

    @Test
    void forkSharesBlocksAndCopiesThePartialBlockOnWrite() {
        KvBlockManager m = new KvBlockManager(6, 4, true);
        int[] p = {1, 2, 3, 4, 5, 6};
        m.allocatePrompt(1, p, 6);
        m.ensureCapacity(1, 6, 0);
        m.markComputed(1, p, 6);
        m.fork(1, 2);
        assertArrayEquals(m.blockTable(1), m.blockTable(2));
        assertEquals(2, m.usage().used());
        assertTrue(m.ensureCapacity(2, 7, 6));
        List<KvBlockManager.BlockCopy> copies = m.drainCopies();
        assertEquals(1, copies.size());
        assertEquals(m.blockTable(1)[1], copies.get(0).from());
        assertEquals(m.blockTable(2)[1], copies.get(0).to());
        assertEquals(m.blockTable(1)[0], m.blockTable(2)[0]); // the full block stays shared
        assertTrue(m.ensureCapacity(1, 7, 6)); // the parent now holds its block alone: no copy
        assertTrue(m.drainCopies().isEmpty());
        assertNull(m.checkInvariant());
    }

    @Test
    void poolSizeFromBytes() {
        assertEquals(512L << 20, KvPoolSize.parseBytes("512MB", "--kv-memory"));
        assertEquals(3L << 29, KvPoolSize.parseBytes("1.5GiB", "--kv-memory"));
        assertEquals(4096, KvPoolSize.parseBytes("4096", "--kv-memory"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvPoolSize.parseBytes("lots", "--kv-memory"));
        assertTrue(e.getMessage().startsWith("--kv-memory: 'lots'"), e.getMessage());
        long perBlock = KvPoolSize.bytesPerBlock(2, 16, 4, 8);
        assertEquals(2L * 2 * 16 * 4 * 8 * 4, perBlock);
        assertEquals(10, KvPoolSize.blocksFor(10 * perBlock + 5, perBlock, "x"));
        assertThrows(IllegalArgumentException.class, () -> KvPoolSize.blocksFor(perBlock - 1, perBlock, "x"));
    }
}
