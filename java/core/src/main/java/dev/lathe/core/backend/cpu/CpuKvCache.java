package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;

/**
 * K and V pools in Java arrays, one pair per layer, each {@code [numBlocks, blockSize, kvHeads, headDim]}
 * flattened: slot {@code s}, head {@code h} starts at {@code (s * kvHeads + h) * headDim}. f32 pools
 * are {@code float[]}; f16 and bf16 pools are {@code short[]} of the 16-bit patterns; int8 pools are
 * {@code byte[]} with a parallel {@code float[]} of scales {@code [numBlocks, blockSize, kvHeads]}
 * (slot {@code s}, head {@code h} at {@code s * kvHeads + h}), so a block is its int8 values and
 * its scales, each contiguous. Exactly one pair of pools is set.
 */
final class CpuKvCache implements KvCache {
    final float[][] keys;        // f32: [layer][numBlocks * blockSize * kvHeads * headDim]; else null
    final float[][] values;      // same layout
    final short[][] keyHalves;   // f16/bf16: same layout, 16-bit patterns; else null
    final short[][] valueHalves; // same layout
    final byte[][] keyBytes;     // int8: same layout, round(x / scale) in [-127, 127]; else null
    final byte[][] valueBytes;   // same layout
    final float[][] keyScales;   // int8: [layer][numBlocks * blockSize * kvHeads], max|x| / 127; else null
    final float[][] valueScales; // same layout
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
        boolean f32 = dtype == KvDtype.F32;
        boolean halves = dtype == KvDtype.F16 || dtype == KvDtype.BF16;
        boolean int8 = dtype == KvDtype.INT8;
        int vectors = numBlocks * blockSize * kvHeads; // <= perLayer, so it fits too
        this.keys = f32 ? new float[layers][(int) perLayer] : null;
        this.values = f32 ? new float[layers][(int) perLayer] : null;
        this.keyHalves = halves ? new short[layers][(int) perLayer] : null;
        this.valueHalves = halves ? new short[layers][(int) perLayer] : null;
        this.keyBytes = int8 ? new byte[layers][(int) perLayer] : null;
        this.valueBytes = int8 ? new byte[layers][(int) perLayer] : null;
        this.keyScales = int8 ? new float[layers][vectors] : null;
        this.valueScales = int8 ? new float[layers][vectors] : null;
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
        Object[] pools = switch (dtype) {
            case F32 -> new Object[] {keys, values};
            case F16, BF16 -> new Object[] {keyHalves, valueHalves};
            case INT8 -> new Object[] {keyBytes, valueBytes};
        };
        for (Object pool : pools) {
            for (Object layer : (Object[]) pool) {
                System.arraycopy(layer, from * blockValues, layer, to * blockValues, blockValues);
            }
        }
        if (dtype == KvDtype.INT8) {
            // The scales travel with their values: a block's int8 rows mean nothing without them.
            int blockVectors = blockSize * kvHeads;
            for (float[][] pool : new float[][][] {keyScales, valueScales}) {
                for (float[] layer : pool) {
                    System.arraycopy(layer, from * blockVectors, layer, to * blockVectors, blockVectors);
                }
            }
        }
    }

    /** K and V, every layer, scales included: the same count {@link dev.lathe.core.kv.KvPoolSize} budgets with. */
    @Override
    public long byteSize() {
        return 2L * layers * numBlocks * blockSize * kvHeads * dtype.bytesPerVector(headDim);
    }

    @Override
    public void close() {
        // Heap memory: nothing to release.
    }
}
