package dev.lathe.core.kv;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Block tables for sequences over one {@link BlockAllocator}: which blocks hold each sequence's
 * tokens, in position order (token {@code p} lives in slot {@code p % blockSize} of
 * {@code table[p / blockSize]}).
 *
 * <p>Prefix caching: once a block is full and computed, it is registered under
 * {@link BlockHashes#of}(previous block's hash, its tokens); {@link #allocatePrompt} hands a new
 * sequence every registered block of its prompt, so their prefill is skipped.
 *
 * <p>Forks share every block; a block shared by several sequences is never written: before a
 * sequence writes into one, {@link #ensureCapacity} gives it a private copy (copy on write) and
 * queues the copy for the KV cache ({@link #drainCopies}).
 *
 * <p>Not thread-safe: the scheduler's thread owns it.
 */
public final class KvBlockManager {
    /** A block to duplicate in the KV pools before the next forward pass. */
    public record BlockCopy(int from, int to) {
    }

    private static final class SequenceBlocks {
        int[] table = new int[4];
        int blocks;
        long[] hashes = new long[4]; // hash of each full, computed block, in order
        int hashed;

        void add(int block) {
            if (blocks == table.length) {
                table = Arrays.copyOf(table, blocks * 2);
            }
            table[blocks++] = block;
        }

        void addHash(long h) {
            if (hashed == hashes.length) {
                hashes = Arrays.copyOf(hashes, hashed * 2);
            }
            hashes[hashed++] = h;
        }

        long lastHash() {
            return hashed == 0 ? BlockHashes.ROOT : hashes[hashed - 1];
        }
    }

    private final BlockAllocator allocator;
    private final int blockSize;
    private final boolean prefixCaching;
    private final Map<Long, SequenceBlocks> sequences = new HashMap<>();
    private final List<BlockCopy> pendingCopies = new ArrayList<>();
    private long prefixHitTokens;

    public KvBlockManager(int numBlocks, int blockSize, boolean prefixCaching) {
        if (blockSize < 1) {
            throw new IllegalArgumentException("block size must be at least 1, got " + blockSize);
        }
        this.allocator = new BlockAllocator(numBlocks);
        this.blockSize = blockSize;
        this.prefixCaching = prefixCaching;
    }

    public int blockSize() {
        return blockSize;
    }

    public int numBlocks() {
        return allocator.numBlocks();
    }

    public boolean prefixCaching() {
        return prefixCaching;
    }

    public KvUsage usage() {
        return allocator.usage();
    }

    /** Prompt tokens served from the prefix cache so far. */
    public long prefixHitTokens() {
        return prefixHitTokens;
    }

    /** Blocks needed to hold {@code tokens} tokens. */
    public int blocksFor(int tokens) {
        return (int) (((long) tokens + blockSize - 1) / blockSize);
    }

    public boolean has(long seq) {
        return sequences.containsKey(seq);
    }

    /**
     * Starts {@code seq}'s block table with the cached blocks of its prompt's prefix and returns
     * how many tokens they hold (a multiple of the block size). NOTE: at most
     * {@code (promptLength - 1) / blockSize} blocks are reused, so the last prompt token is
     * always computed: its logits are what the first sample needs.
     */
    public int allocatePrompt(long seq, int[] tokens, int promptLength) {
        if (sequences.containsKey(seq)) {
            throw new IllegalStateException("sequence " + seq + " already has blocks");
        }
        SequenceBlocks s = new SequenceBlocks();
        sequences.put(seq, s);
        if (!prefixCaching) {
            return 0;
        }
        int reusable = (promptLength - 1) / blockSize;
        int[] blockTokens = new int[blockSize];
        for (int i = 0; i < reusable; i++) {
            System.arraycopy(tokens, i * blockSize, blockTokens, 0, blockSize);
            long parent = s.lastHash();
            long h = BlockHashes.of(parent, blockTokens, 0, blockSize);
            int block = allocator.findCached(h, parent, blockTokens);
            if (block < 0) {
                break;
            }
            allocator.acquireCached(block);
            s.add(block);
            s.addHash(h);
        }
        int hit = s.blocks * blockSize;
        prefixHitTokens += hit;
        return hit;
    }

    /**
     * Makes {@code seq}'s table cover positions {@code [0, totalTokens)} and makes every block
     * at or after position {@code writeFrom} private to it (copy on write). All or nothing:
     * returns false, changing nothing, when the pool has too few blocks.
     */
    public boolean ensureCapacity(long seq, int totalTokens, int writeFrom) {
        SequenceBlocks s = sequence(seq);
        int needed = Math.max(0, blocksFor(totalTokens) - s.blocks);
        int firstWritten = writeFrom / blockSize;
        int shared = 0;
        for (int i = firstWritten; i < s.blocks; i++) {
            if (allocator.refCount(s.table[i]) > 1) {
                shared++;
            }
        }
        if (needed + shared > allocator.available()) {
            return false;
        }
        for (int i = firstWritten; i < s.blocks; i++) {
            int block = s.table[i];
            if (allocator.refCount(block) > 1) {
                int copy = allocator.allocate();
                allocator.release(block);
                s.table[i] = copy;
                pendingCopies.add(new BlockCopy(block, copy));
            }
        }
        for (int i = 0; i < needed; i++) {
            s.add(allocator.allocate());
        }
        return true;
    }

    /**
     * Records that {@code seq}'s first {@code computedTokens} tokens are in the cache, registering
     * each newly full block for prefix reuse. {@code tokens} holds at least that many.
     */
    public void markComputed(long seq, int[] tokens, int computedTokens) {
        SequenceBlocks s = sequence(seq);
        int full = Math.min(computedTokens / blockSize, s.blocks);
        while (s.hashed < full) {
            int i = s.hashed;
            long parent = s.lastHash();
            long h = BlockHashes.of(parent, tokens, i * blockSize, blockSize);
            if (prefixCaching) {
                allocator.register(s.table[i], h, parent, Arrays.copyOfRange(tokens, i * blockSize, (i + 1) * blockSize));
            }
            s.addHash(h);
        }
    }

    /**
     * Releases {@code seq}'s blocks past those needed for its first {@code tokens} tokens: the
     * rollback of rejected speculative drafts. Blocks registered in the prefix cache hold verified
     * tokens only, so none of them is past the cut.
     */
    public void truncate(long seq, int tokens) {
        SequenceBlocks s = sequence(seq);
        int keep = blocksFor(tokens);
        if (s.hashed > tokens / blockSize) {
            throw new IllegalStateException("sequence " + seq + ": truncating to " + tokens + " tokens would cut a block of the prefix cache");
        }
        while (s.blocks > keep) {
            allocator.release(s.table[--s.blocks]);
        }
    }

    /** {@code child} starts with every block of {@code parent}, shared (copy on write). */
    public void fork(long parent, long child) {
        SequenceBlocks p = sequence(parent);
        if (sequences.containsKey(child)) {
            throw new IllegalStateException("sequence " + child + " already has blocks");
        }
        SequenceBlocks c = new SequenceBlocks();
        for (int i = 0; i < p.blocks; i++) {
            allocator.retain(p.table[i]);
            c.add(p.table[i]);
        }
        for (int i = 0; i < p.hashed; i++) {
            c.addHash(p.hashes[i]);
        }
        sequences.put(child, c);
    }

    /**
     * Releases every block of {@code seq} (no-op for an unknown sequence). NOTE: last block
     * first, so that of a freed prefix the tail is evicted before the head, which more requests
     * share.
     */
    public void free(long seq) {
        SequenceBlocks s = sequences.remove(seq);
        if (s == null) {
            return;
        }
        for (int i = s.blocks - 1; i >= 0; i--) {
            allocator.release(s.table[i]);
        }
    }

    /** {@code seq}'s blocks in position order (a copy). */
    public int[] blockTable(long seq) {
        SequenceBlocks s = sequence(seq);
        return Arrays.copyOf(s.table, s.blocks);
    }

    /** Appends {@code seq}'s first {@code count} blocks to {@code out} at {@code offset}. */
    public void copyBlockTable(long seq, int count, int[] out, int offset) {
        SequenceBlocks s = sequence(seq);
        if (count > s.blocks) {
            throw new IllegalStateException("sequence " + seq + " has " + s.blocks + " blocks, " + count + " asked for");
        }
        System.arraycopy(s.table, 0, out, offset, count);
    }

    /** The block copies queued by copy on write since the last call; the caller must apply them before writing. */
    public List<BlockCopy> drainCopies() {
        List<BlockCopy> copies = List.copyOf(pendingCopies);
        pendingCopies.clear();
        return copies;
    }

    /** Forgets every cached prefix (they become free blocks). */
    public void clearPrefixCache() {
        allocator.clearCache();
    }

    public int sequenceCount() {
        return sequences.size();
    }

    /**
     * The invariant: every block is free, cached, or owned with a reference count equal to the
     * number of block-table entries pointing at it. Returns the first violation, or null.
     */
    public String checkInvariant() {
        String own = allocator.checkConsistency();
        if (own != null) {
            return own;
        }
        int[] expected = new int[allocator.numBlocks()];
        for (SequenceBlocks s : sequences.values()) {
            for (int i = 0; i < s.blocks; i++) {
                expected[s.table[i]]++;
            }
        }
        for (int b = 0; b < expected.length; b++) {
            if (allocator.refCount(b) != expected[b]) {
                return "block " + b + " has reference count " + allocator.refCount(b) + " but " + expected[b]
                        + " table entries";
            }
        }
        return null;
    }

    private SequenceBlocks sequence(long seq) {
        SequenceBlocks s = sequences.get(seq);
        if (s == null) {
            throw new IllegalStateException("sequence " + seq + " has no blocks");
        }
        return s;
    }
}
