package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.KvCache;

/**
 * K and V pools in Java arrays, one pair per layer, each {@code [numBlocks, blockSize, kvHeads, headDim]}
 * flattened: slot {@code s}, head {@code h} starts at {@code (s * kvHeads + h) * headDim}.
 */
final class CpuKvCache implements KvCache {
    final float[][] keys;   // [layer][numBlocks * blockSize * kvHeads * headDim]
    final float[][] values; // same layout
    private final int numBlocks;
    private final int blockSize;
    private final int kvHeads;
    private final int headDim;

    CpuKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        long perLayer = (long) numBlocks * blockSize * kvHeads * headDim;
        if (perLayer > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("KV pool of " + perLayer + " floats per layer exceeds a Java array;"
                    + " use fewer blocks");
        }
        this.keys = new float[layers][(int) perLayer];
        this.values = new float[layers][(int) perLayer];
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    @Override
    public int layers() {
        return keys.length;
    }

    @Override
    public int numBlocks() {
        return numBlocks;
    }

    @Override
    public int blockSize() {
        return blockSize;
    }

    @Override
    public int kvHeads() {
        return kvHeads;
    }

    @Override
    public int headDim() {
        return headDim;
    }

    @Override
    public void copyBlock(int from, int to) {
        java.util.Objects.checkIndex(from, numBlocks);
        java.util.Objects.checkIndex(to, numBlocks);
        int blockFloats = blockSize * kvHeads * headDim;
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(keys[l], from * blockFloats, keys[l], to * blockFloats, blockFloats);
            System.arraycopy(values[l], from * blockFloats, values[l], to * blockFloats, blockFloats);
        }
    }

    @Override
    public long byteSize() {
        return 2L * keys.length * keys[0].length * Float.BYTES;
    }

    @Override
    public void close() {
        // Heap memory: nothing to release.
    }
}
