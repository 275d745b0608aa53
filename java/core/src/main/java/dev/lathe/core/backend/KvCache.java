package dev.lathe.core.backend;

/**
 * Paged key/value storage owned by a {@link Backend}: per layer one pool for K and one for V,
 * each {@code [numBlocks, blockSize, kvHeads, headDim]}. Token slot {@code s} is row
 * {@code s % blockSize} of block {@code s / blockSize}; which slots belong to which sequence is
 * the batch plan's business ({@link BatchPlan#slotMapping()}, {@link BatchPlan#blockTable()}).
 */
public interface KvCache extends AutoCloseable {
    int layers();

    int numBlocks();

    int blockSize();

    int kvHeads();

    int headDim();

    /** The element type K and V are stored in. */
    KvDtype dtype();

    /**
     * Copies block {@code from}'s K and V, every layer, into block {@code to} (copy on write when
     * forked sequences stop sharing a partly filled block).
     */
    void copyBlock(int from, int to);

    /** Bytes held by the pools. */
    long byteSize();

    @Override
    void close();
}
