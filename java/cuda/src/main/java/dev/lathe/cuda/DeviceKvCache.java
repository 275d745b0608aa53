package dev.lathe.cuda;

import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.bindings.LatheNative;
import java.lang.foreign.MemorySegment;

/**
 * Paged K and V pools in device memory, per layer one of each, {@code [numBlocks, blockSize,
 * kvHeads, headDim]} f32 (the CPU cache's layout, so slot s / head h starts at float
 * {@code (s * kvHeads + h) * headDim}). Each pool is its own allocation, zeroed at creation.
 *
 * <p>Each pool holds one block more than {@link #numBlocks()}: the sink block ({@link #sinkBlock}),
 * which no sequence owns; the padding sequences of a decode graph (PaddedDecodePlan) write their
 * K/V there and attend to it, so padding never touches a real sequence's cache.
 */
final class DeviceKvCache implements KvCache {
    private final MemorySegment[] buffers; // [layer * 2 + 0] K, [layer * 2 + 1] V
    final long[] keys;                    // [layer] device address of the K pool
    final long[] values;                  // [layer] device address of the V pool
    private final int numBlocks;
    private final int blockSize;
    private final int kvHeads;
    private final int headDim;
    private final long poolBytes;
    private final MemorySegment stream;
    private boolean closed;

    DeviceKvCache(CudaDevice device, int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        if (layers < 1 || numBlocks < 1 || blockSize < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("KV cache dimensions must be positive: layers=" + layers + " numBlocks="
                    + numBlocks + " blockSize=" + blockSize + " kvHeads=" + kvHeads + " headDim=" + headDim);
        }
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.stream = device.stream;
        this.poolBytes = Math.multiplyExact(Math.multiplyExact((numBlocks + 1L) * blockSize, (long) kvHeads * headDim), 4L);
        this.buffers = new MemorySegment[2 * layers];
        this.keys = new long[layers];
        this.values = new long[layers];
        try {
            for (int l = 0; l < layers; l++) {
                buffers[2 * l] = LatheNative.bufferAlloc(device.context, poolBytes);
                buffers[2 * l + 1] = LatheNative.bufferAlloc(device.context, poolBytes);
                keys[l] = LatheNative.bufferDevicePointer(buffers[2 * l]);
                values[l] = LatheNative.bufferDevicePointer(buffers[2 * l + 1]);
                LatheNative.memset(device.stream, keys[l], 0, poolBytes);
                LatheNative.memset(device.stream, values[l], 0, poolBytes);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /**
     * Copies block {@code source} over block {@code target} in every layer's K and V pools (a
     * forked sequence's copy on write). Queued on the backend's stream like the ops.
     */
    // NOTE: no @Override: main's KvCache is gaining copyBlock(int, int); this implements it once merged.
    public void copyBlock(int source, int target) {
        if (source < 0 || source >= numBlocks || target < 0 || target >= numBlocks) {
            throw new IllegalArgumentException("copyBlock(" + source + ", " + target + "): blocks must lie in [0, "
                    + numBlocks + ")");
        }
        long blockBytes = (long) blockSize * kvHeads * headDim * 4;
        for (int l = 0; l < keys.length; l++) {
            LatheNative.memcpyD2d(stream, keys[l] + target * blockBytes, keys[l] + source * blockBytes, blockBytes);
            LatheNative.memcpyD2d(stream, values[l] + target * blockBytes, values[l] + source * blockBytes, blockBytes);
        }
    }

    /** Slots the device pools hold, the sink block's included (what the kernels may address). */
    long slots() {
        return (numBlocks + 1L) * blockSize;
    }

    /** Blocks the device pools hold, the sink block included. */
    int deviceBlocks() {
        return numBlocks + 1;
    }

    /** The block no sequence owns, where padding sequences write. */
    int sinkBlock() {
        return numBlocks;
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
    public KvDtype dtype() {
        return KvDtype.F32;
    }

    @Override
    public long byteSize() {
        return 2L * keys.length * poolBytes;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (MemorySegment b : buffers) {
            if (b != null) {
                LatheNative.bufferFree(b);
            }
        }
    }
}
