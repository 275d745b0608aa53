package dev.lathe.cuda;

/**
 * The shapes decode-step graphs are captured for (DecodeGraphs): a decode batch of B sequences
 * runs in the graph of the smallest power-of-two bucket that holds it, padded with one-token
 * sequences that write only the KV cache's sink block, and attention's grid is sized for a
 * context bound, a power of two of at least {@code minContext} positions, so that the graph
 * replays while every sequence grows up to it and is captured again (with the next bound) after.
 *
 * @param maxBatch   the largest bucket; bigger batches run uncaptured
 * @param minContext the smallest context bound (one split-KV partition, 256, is the natural floor:
 *                   under it attention never splits, so a smaller bound only recaptures sooner)
 */
record DecodeBuckets(int maxBatch, int minContext) {
    static final DecodeBuckets DEFAULT = new DecodeBuckets(64, 256);

    DecodeBuckets {
        if (maxBatch < 1 || Integer.bitCount(maxBatch) != 1 || minContext < 1) {
            throw new IllegalArgumentException("maxBatch " + maxBatch + " must be a power of two and minContext "
                    + minContext + " positive");
        }
    }

    /** The bucket for {@code sequences} decode sequences, or -1 when none holds them. */
    int batchBucket(int sequences) {
        if (sequences < 1 || sequences > maxBatch) {
            return -1;
        }
        return sequences == 1 ? 1 : Integer.highestOneBit(sequences - 1) << 1;
    }

    /**
     * The context bound for a step whose longest window is {@code window} positions: the next
     * power of two (at least minContext), a whole number of blocks, and no more than the cache's
     * {@code cacheBlocks} blocks can hold (never under {@code window} itself).
     */
    int contextBound(int window, int blockSize, int cacheBlocks) {
        if (window < 1 || blockSize < 1 || cacheBlocks < 1) {
            throw new IllegalArgumentException("window " + window + ", blockSize " + blockSize + " and cacheBlocks "
                    + cacheBlocks + " must be positive");
        }
        long bound = Math.max(minContext, window <= 1 ? 1 : Long.highestOneBit(window - 1L) << 1);
        bound = Math.min(bound, (long) cacheBlocks * blockSize);
        bound = Math.max(bound, window);
        long blocks = (bound + blockSize - 1) / blockSize;
        return Math.toIntExact(blocks * blockSize);
    }
}
