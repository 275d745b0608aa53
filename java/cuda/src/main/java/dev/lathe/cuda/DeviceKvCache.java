package dev.lathe.cuda;

import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.bindings.LatheNative;
import java.lang.foreign.MemorySegment;

/**
 * Paged K and V pools in device memory, per layer one of each, {@code [numBlocks, blockSize,
 * kvHeads, headDim]} of f32, f16 or bf16 (the CPU cache's layout, so slot s / head h starts at
 * value {@code (s * kvHeads + h) * headDim}; {@link KvPoolShape} sizes them). Each pool is its own
 * allocation, zeroed at creation. The kernels round f16/bf16 as the CPU cache does (nearest even),
 * so both caches hold the same values for the same K/V.
 *
 * <p>Each pool holds one block more than {@link #numBlocks()}: the sink block ({@link #sinkBlock}),
 * which no sequence owns; the padding sequences of a decode graph (PaddedDecodePlan) write their
 * K/V there and attend to it, so padding never touches a real sequence's cache.
 */
final class DeviceKvCache implements KvCache {
    private final MemorySegment[] buffers; // [layer * 2 + 0] K, [layer * 2 + 1] V
    final long[] keys;                    // [layer] device address of the K pool
    final long[] values;                  // [layer] device address of the V pool
    final KvPoolShape shape;
    private final long poolBytes;
    private final MemorySegment stream;
    private boolean closed;

    /** Allocates and zeroes the pools {@code shape} describes (the record has checked its dimensions and dtype). */
    DeviceKvCache(CudaDevice device, KvPoolShape shape) {
        int layers = shape.layers();
        this.shape = shape;
        this.stream = device.stream;
        this.poolBytes = shape.poolBytes();
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
        int numBlocks = shape.numBlocks();
        if (source < 0 || source >= numBlocks || target < 0 || target >= numBlocks) {
            throw new IllegalArgumentException("copyBlock(" + source + ", " + target + "): blocks must lie in [0, "
                    + numBlocks + ")");
        }
        // A block is blockSize * kvHeads * headDim values of the pool's dtype: a byte copy suits any.
        long blockBytes = shape.blockBytes();
        long from = shape.blockOffset(source);
        long to = shape.blockOffset(target);
        for (int l = 0; l < keys.length; l++) {
            LatheNative.memcpyD2d(stream, keys[l] + to, keys[l] + from, blockBytes);
            LatheNative.memcpyD2d(stream, values[l] + to, values[l] + from, blockBytes);
        }
    }

    /** lathe.h's LATHE_KV_* code of the pools' element type, for the kernels. */
    int dtypeCode() {
        return shape.code();
    }

    /** Slots the device pools hold, the sink block's included (what the kernels may address). */
    long slots() {
        return shape.slots();
    }

    /** Blocks the device pools hold, the sink block included. */
    int deviceBlocks() {
        return shape.deviceBlocks();
    }

    /** The block no sequence owns, where padding sequences write. */
    int sinkBlock() {
        return shape.numBlocks();
    }

    @Override
    public int layers() {
        return keys.length;
    }

    @Override
    public int numBlocks() {
        return shape.numBlocks();
    }

    @Override
    public int blockSize() {
        return shape.blockSize();
    }

    @Override
    public int kvHeads() {
        return shape.kvHeads();
    }

    @Override
    public int headDim() {
        return shape.headDim();
    }

    @Override
    public KvDtype dtype() {
        return shape.dtype();
    }

    /** Bytes the device pools hold, the sink block's included. */
    @Override
    public long byteSize() {
        return shape.byteSize();
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
