package dev.lathe.core.kv;

/**
 * The identity of a full KV block for prefix caching: a 64-bit hash of the parent block's hash
 * and the block's token ids, so equal hashes mean equal prefixes up to and including the block.
 * NOTE: a 64-bit hash can collide; {@link BlockAllocator#findCached} also compares the tokens and
 * parent hash it stored, so a collision costs a cache miss, never wrong output.
 */
public final class BlockHashes {
    /** The "parent hash" of a sequence's first block. */
    public static final long ROOT = 0x6C617468655F6B76L;

    private BlockHashes() {
    }

    public static long of(long parent, int[] tokens, int from, int count) {
        long h = mix(parent ^ 0x9E3779B97F4A7C15L * (count + 1));
        for (int i = 0; i < count; i++) {
            h = mix(h + 0x9E3779B97F4A7C15L + (tokens[from + i] & 0xFFFFFFFFL));
        }
        return h;
    }

    /** SplitMix64's finalizer: every input bit affects every output bit. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
