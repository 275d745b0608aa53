package dev.lathe.core.kv;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * The KV pool's blocks and who holds them. Every block is in exactly one of three states:
 * <ul>
 *   <li><b>free</b>: reference count 0, no content worth keeping;</li>
 *   <li><b>cached</b>: reference count 0 but holding a full block of a known prefix (its
 *       {@link BlockHashes hash} is registered), kept for reuse until the space is needed;</li>
 *   <li><b>owned</b>: reference count &gt; 0, one per block-table entry pointing at it.</li>
 * </ul>
 * {@link #allocate} takes a free block first and evicts the least recently released cached block
 * only when no free block is left.
 *
 * <p>Not thread-safe: the scheduler's thread owns it.
 */
public final class BlockAllocator {
    private final int numBlocks;
    private final int[] refCount;               // [numBlocks]
    private final long[] hash;                  // [numBlocks] valid where hasHash
    private final boolean[] hasHash;            // [numBlocks]
    private final int[][] hashedTokens;         // [numBlocks] the tokens a hashed block holds (collision check)
    private final long[] parentHash;            // [numBlocks] the parent hash a hashed block was registered with
    private final ArrayDeque<Integer> free = new ArrayDeque<>();
    // NOTE: insertion order is release order, so iteration starts at the least recently used block.
    private final LinkedHashSet<Integer> evictable = new LinkedHashSet<>();
    private final Map<Long, Integer> blockByHash = new HashMap<>();
    private long evictions;

    public BlockAllocator(int numBlocks) {
        if (numBlocks < 1) {
            throw new IllegalArgumentException("the KV pool needs at least one block, got " + numBlocks);
        }
        this.numBlocks = numBlocks;
        this.refCount = new int[numBlocks];
        this.hash = new long[numBlocks];
        this.hasHash = new boolean[numBlocks];
        this.hashedTokens = new int[numBlocks][];
        this.parentHash = new long[numBlocks];
        for (int b = 0; b < numBlocks; b++) {
            free.addLast(b);
        }
    }

    public int numBlocks() {
        return numBlocks;
    }

    /** Blocks that {@link #allocate} can hand out now: free plus cached. */
    public int available() {
        return free.size() + evictable.size();
    }

    public KvUsage usage() {
        return new KvUsage(numBlocks - free.size() - evictable.size(), evictable.size(), free.size(), numBlocks, evictions);
    }

    public int refCount(int block) {
        return refCount[block];
    }

    public boolean isCached(int block) {
        return refCount[block] == 0 && hasHash[block];
    }

    /** A block with reference count 1 and no hash; -1 when every block is owned. */
    public int allocate() {
        int block;
        if (!free.isEmpty()) {
            block = free.pollFirst();
        } else if (!evictable.isEmpty()) {
            Iterator<Integer> oldest = evictable.iterator();
            block = oldest.next();
            oldest.remove();
            forgetHash(block);
            evictions++;
        } else {
            return -1;
        }
        refCount[block] = 1;
        return block;
    }

    /** One more holder of an owned block (a fork sharing it). */
    public void retain(int block) {
        if (refCount[block] <= 0) {
            throw new IllegalStateException("block " + block + " is not owned; use acquireCached for a cached block");
        }
        refCount[block]++;
    }

    /** One holder fewer; at zero the block becomes cached (if hashed) or free. */
    public void release(int block) {
        if (refCount[block] <= 0) {
            throw new IllegalStateException("block " + block + " released more often than held");
        }
        if (--refCount[block] == 0) {
            if (hasHash[block]) {
                evictable.add(block);
            } else {
                free.addLast(block);
            }
        }
    }

    /**
     * The block holding exactly {@code tokens} after the prefix hashed {@code parent}, or -1.
     * Does not change any count: call {@link #acquireCached} to take it.
     */
    public int findCached(long blockHash, long parent, int[] tokens) {
        Integer block = blockByHash.get(blockHash);
        if (block == null || parentHash[block] != parent || !Arrays.equals(hashedTokens[block], tokens)) {
            return -1;
        }
        return block;
    }

    /** Takes a block found by {@link #findCached}: owned or cached, it gains one holder. */
    public void acquireCached(int block) {
        if (!hasHash[block]) {
            throw new IllegalStateException("block " + block + " holds no registered prefix");
        }
        if (refCount[block] == 0) {
            evictable.remove(block);
        }
        refCount[block]++;
    }

    /**
     * Registers an owned, now full block as holding {@code tokens} after the prefix hashed
     * {@code parent}. Returns false (and registers nothing) when another block already holds that
     * prefix: the first one stays the one new requests find.
     */
    public boolean register(int block, long blockHash, long parent, int[] tokens) {
        if (refCount[block] <= 0) {
            throw new IllegalStateException("block " + block + " is not owned");
        }
        if (hasHash[block] || blockByHash.containsKey(blockHash)) {
            return false;
        }
        hasHash[block] = true;
        hash[block] = blockHash;
        parentHash[block] = parent;
        hashedTokens[block] = tokens.clone();
        blockByHash.put(blockHash, block);
        return true;
    }

    /** Drops every cached block's registration (they become free); owned blocks keep theirs. */
    public void clearCache() {
        for (int block : evictable) {
            forgetHash(block);
            free.addLast(block);
        }
        evictable.clear();
    }

    private void forgetHash(int block) {
        blockByHash.remove(hash[block]);
        hasHash[block] = false;
        hashedTokens[block] = null;
    }

    /**
     * Checks the allocator's own bookkeeping: the free and cached sets are disjoint, hold exactly
     * the blocks with reference count 0, and the hash index points at hashed blocks. Returns a
     * description of the first problem, or null.
     */
    public String checkConsistency() {
        boolean[] seen = new boolean[numBlocks];
        for (int b : free) {
            if (seen[b] || refCount[b] != 0 || hasHash[b]) {
                return "free block " + b + " is listed twice, owned or hashed";
            }
            seen[b] = true;
        }
        for (int b : evictable) {
            if (seen[b] || refCount[b] != 0 || !hasHash[b]) {
                return "cached block " + b + " is also free, owned or unhashed";
            }
            seen[b] = true;
        }
        for (int b = 0; b < numBlocks; b++) {
            if (!seen[b] && refCount[b] <= 0) {
                return "block " + b + " is neither free, cached nor owned (refCount " + refCount[b] + ")";
            }
        }
        for (Map.Entry<Long, Integer> e : blockByHash.entrySet()) {
            int b = e.getValue();
            if (!hasHash[b] || hash[b] != e.getKey()) {
                return "hash index points at block " + b + " which does not carry that hash";
            }
        }
        return null;
    }
}
