package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;

/**
 * K and V pools in Java arrays, one pair per layer, each {@code [numBlocks, blockSize, kvHeads, headDim]}
 * flattened: slot {@code s}, head {@code h} starts at {@code (s * kvHeads + h) * headDim}. f32 pools
 * are {@code float[]}; f16 and bf16 pools are {@code short[]} of the 16-bit patterns.
 */
final class CpuKvCache implements KvCache {
    final float[][] keys;        // f32: [layer][numBlocks * blockSize * kvHeads * headDim]; else null
    final float[][] values;      // same layout
    final short[][] keyHalves;   // f16/bf16: same layout, 16-bit patterns; f32: null
    final short[][] valueHalves; // same layout
    private final KvDtype dtype;
    private final int layers;
    private final int numBlocks;
    private final int blockSize;
    private final int kvHeads;
    private final int headDim;

    CpuKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
        long perLayer = (long) numBlocks * blockSize * kvHeads * headDim;
        if (perLayer > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("KV pool of " + perLayer + " values per layer exceeds a Java array;"
                    + " use fewer blocks");
        }
        boolean halves = dtype != KvDtype.F32;
        this.keys = halves ? null : new float[layers][(int) perLayer];
        this.values = halves ? null : new float[layers][(int) perLayer];
        this.keyHalves = halves ? new short[layers][(int) perLayer] : null;
        this.valueHalves = halves ? new short[layers][(int) perLayer] : null;
        this.dtype = dtype;
        this.layers = layers;
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /** Whether the 16-bit pools hold bfloat16 (else IEEE f16); meaningful only when {@link #keyHalves} is set. */
    boolean bfloat16() {
        return dtype == KvDtype.BF16;
    }

    @Override
    public int layers() {
        return layers;
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
    public KvDtype dtype() {
        return dtype;
    }

    @Override
    public void copyBlock(int from, int to) {
        java.util.Objects.checkIndex(from, numBlocks);
        java.util.Objects.checkIndex(to, numBlocks);
        int blockValues = blockSize * kvHeads * headDim;
        Object[] pools = keys != null ? new Object[] {keys, values} : new Object[] {keyHalves, valueHalves};
        for (Object pool : pools) {
            for (Object layer : (Object[]) pool) {
                System.arraycopy(layer, from * blockValues, layer, to * blockValues, blockValues);
            }
        }
    }

    @Override
    public long byteSize() {
        return 2L * layers * numBlocks * blockSize * kvHeads * headDim * dtype.bytes();
    }

    @Override
    public void close() {
        // Heap memory: nothing to release.
    }
}
