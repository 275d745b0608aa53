package dev.lathe.cuda;

import dev.lathe.bindings.LatheException;
import dev.lathe.bindings.LatheNative;
import dev.lathe.bindings.LatheStatus;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A caching allocator of device memory for activations and plan arrays: sizes are rounded to a
 * size class, freed blocks wait in a per-class free list and are handed out again without a
 * cudaMalloc. Blocks come back either explicitly ({@link Block#release}) or, for tensors the
 * model simply drops, through a {@link Cleaner} once the tensor is unreachable.
 *
 * <p>NOTE: reuse is safe without events because the backend runs everything on one stream: a
 * block is released only when no Java code can enqueue more work on it, and whatever was
 * already enqueued on it runs before any later user's work on the same stream.
 *
 * <p>NOTE: the Backend SPI has no way to free a tensor, so dropped tensors return only when the
 * garbage collector notices them; a decode loop allocates little Java heap, so the pool asks for
 * a collection itself once more than {@code softLimitBytes} are out, and again before giving up
 * when cudaMalloc runs out of memory.
 */
final class DeviceMemoryPool implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();
    private static final long MIN_CLASS = 256;

    private final MemorySegment context;
    private final long softLimitBytes;
    private final Map<Long, ArrayDeque<MemorySegment>> free = new HashMap<>(); // size class -> buffers
    private final List<MemorySegment> all = new ArrayList<>();
    private long outstandingBytes;
    private long cachedBytes;
    private boolean closed;

    DeviceMemoryPool(MemorySegment context, long softLimitBytes) {
        this.context = context;
        this.softLimitBytes = softLimitBytes;
    }

    /** The size class of a request: powers of two up to 64 MiB, then whole MiB. */
    static long sizeClass(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation size must be positive, got " + bytes);
        }
        if (bytes <= MIN_CLASS) {
            return MIN_CLASS;
        }
        if (bytes <= (64L << 20)) {
            return Long.highestOneBit(bytes - 1) << 1;
        }
        long mib = 1L << 20;
        return (bytes + mib - 1) / mib * mib;
    }

    /** A block of at least {@code bytes}, 256-byte aligned. */
    synchronized Block allocate(long bytes) {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        long size = sizeClass(bytes);
        if (outstandingBytes + size > softLimitBytes) {
            collectDropped();
        }
        ArrayDeque<MemorySegment> list = free.get(size);
        MemorySegment buffer = list == null ? null : list.poll();
        if (buffer != null) {
            cachedBytes -= size;
        } else {
            buffer = allocateFresh(size);
        }
        outstandingBytes += size;
        return new Block(this, buffer, LatheNative.bufferDevicePointer(buffer), size);
    }

    private MemorySegment allocateFresh(long size) {
        try {
            MemorySegment b = LatheNative.bufferAlloc(context, size);
            all.add(b);
            return b;
        } catch (LatheException e) {
            if (e.status() != LatheStatus.OUT_OF_MEMORY) {
                throw e;
            }
            collectDropped();
            trimCache();
            MemorySegment b = LatheNative.bufferAlloc(context, size);
            all.add(b);
            return b;
        }
    }

    // Asks the GC to find dropped tensors, then gives the Cleaner a moment to return them.
    private void collectDropped() {
        // NOTE: called with the lock held; the Cleaner's releases wait for it, so drop it while waiting.
        long before = outstandingBytes;
        System.gc();
        for (int i = 0; i < 20 && outstandingBytes >= before; i++) {
            try {
                wait(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Frees every cached (unused) buffer back to the device. */
    synchronized void trimCache() {
        for (ArrayDeque<MemorySegment> list : free.values()) {
            for (MemorySegment b : list) {
                all.remove(b);
                LatheNative.bufferFree(b);
            }
            list.clear();
        }
        cachedBytes = 0;
    }

    private synchronized void giveBack(MemorySegment buffer, long size) {
        if (closed) {
            return;
        }
        outstandingBytes -= size;
        cachedBytes += size;
        free.computeIfAbsent(size, k -> new ArrayDeque<>()).push(buffer);
        notifyAll();
    }

    synchronized long outstandingBytes() {
        return outstandingBytes;
    }

    synchronized long cachedBytes() {
        return cachedBytes;
    }

    /** Releases {@code block} when {@code owner} becomes unreachable (unless released before). */
    static void releaseWhenUnreachable(Object owner, Block block) {
        CLEANER.register(owner, block::release);
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (MemorySegment b : all) {
            LatheNative.bufferFree(b);
        }
        all.clear();
        free.clear();
    }

    /** A device block: {@code address} is valid until {@link #release}. Releasing twice is harmless. */
    static final class Block {
        private final DeviceMemoryPool pool;
        private final MemorySegment buffer;
        final long address;
        final long capacity;
        private boolean released;

        Block(DeviceMemoryPool pool, MemorySegment buffer, long address, long capacity) {
            this.pool = pool;
            this.buffer = buffer;
            this.address = address;
            this.capacity = capacity;
        }

        void release() {
            synchronized (this) {
                if (released) {
                    return;
                }
                released = true;
            }
            pool.giveBack(buffer, capacity);
        }
    }
}
