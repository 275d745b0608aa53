package dev.lathe.cuda;

import dev.lathe.core.backend.KvDtype;

/**
 * The geometry of {@link DeviceKvCache}'s pools, checked and sized before any device memory is
 * touched: per layer one K and one V pool of {@code numBlocks + 1} blocks (the last one is the
 * sink block, see DeviceKvCache) of {@code blockSize} slots of {@code kvHeads * headDim} values,
 * each value {@code dtype.bytes()} bytes: slot {@code s}, head {@code h} starts at value
 * {@code (s * kvHeads + h) * headDim}, the CPU cache's layout.
 *
 * <p>The kernels store f32, f16 and bf16 (lathe.h's {@code LATHE_KV_*} codes, {@link #code});
 * any other {@link KvDtype} is refused here, naming it.
 */
record KvPoolShape(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
    /** lathe.h's LATHE_KV_F32, LATHE_KV_F16, LATHE_KV_BF16 (KvPoolShapeTest reads them from the header). */
    static final int KV_F32 = 0;
    static final int KV_F16 = 1;
    static final int KV_BF16 = 2;

    KvPoolShape {
        if (layers < 1 || numBlocks < 1 || blockSize < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("KV cache dimensions must be positive: layers=" + layers + " numBlocks="
                    + numBlocks + " blockSize=" + blockSize + " kvHeads=" + kvHeads + " headDim=" + headDim);
        }
        code(dtype);
        // Every byte offset the cache computes must fit a long: one check here covers them all.
        try {
            Math.multiplyExact(2L * layers, Math.multiplyExact(Math.multiplyExact((numBlocks + 1L) * blockSize,
                    (long) kvHeads * headDim), dtype.bytes()));
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("a KV cache of " + layers + " layers x " + numBlocks + " blocks x "
                    + blockSize + " slots x " + kvHeads + " heads x " + headDim + " " + dtype.label()
                    + " values does not fit in 2^63 bytes");
        }
    }

    /**
     * lathe.h's code for {@code dtype}; throws, naming it, for a type the CUDA kernels do not store.
     */
    static int code(KvDtype dtype) {
        if (dtype == null) {
            throw new IllegalArgumentException("the KV cache's element type is null (expected f32, f16 or bf16)");
        }
        // NOTE: a default branch, not an exhaustive switch: a KvDtype added on the CPU side (int8)
        // must compile here and be refused with its name until CUDA kernels store it.
        return switch (dtype) {
            case F32 -> KV_F32;
            case F16 -> KV_F16;
            case BF16 -> KV_BF16;
            default -> throw new IllegalArgumentException("--kv-dtype " + dtype.label() + " is not supported by the "
                    + "CUDA backend (its KV cache stores f32, f16 or bf16); use one of those, or --backend cpu");
        };
    }

    /** lathe.h's code for this cache's element type. */
    int code() {
        return code(dtype);
    }

    /** Values per slot: {@code kvHeads * headDim}. */
    long rowValues() {
        return (long) kvHeads * headDim;
    }

    /** Blocks each pool holds: {@link #numBlocks} and the sink block. */
    int deviceBlocks() {
        return numBlocks + 1;
    }

    /** Slots each pool holds, the sink block's included. */
    long slots() {
        return (long) deviceBlocks() * blockSize;
    }

    /** Bytes of one block of one pool. */
    long blockBytes() {
        return blockSize * rowValues() * dtype.bytes();
    }

    /** Bytes of one pool (one layer's K, or its V), the sink block included. */
    long poolBytes() {
        return deviceBlocks() * blockBytes();
    }

    /** Bytes of every pool together: what the cache allocates. */
    long byteSize() {
        return 2L * layers * poolBytes();
    }

    /** Byte offset of block {@code block} in a pool ({@code block} may be the sink block). */
    long blockOffset(int block) {
        if (block < 0 || block >= deviceBlocks()) {
            throw new IllegalArgumentException("block " + block + " is outside the pool's " + deviceBlocks() + " blocks");
        }
        return block * blockBytes();
    }
}
