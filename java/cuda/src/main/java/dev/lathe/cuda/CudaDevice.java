package dev.lathe.cuda;

import dev.lathe.bindings.LatheNative;
import java.lang.foreign.MemorySegment;

/**
 * One opened GPU: its lathe context and the one stream all of a backend's work is queued on.
 * {@link #open} either succeeds or throws with the reason the device cannot be used (no library,
 * no driver, no device, compute capability too old), never returns a half-working device.
 */
final class CudaDevice implements AutoCloseable {
    final MemorySegment context;
    final MemorySegment stream;
    final String name;
    final int computeMajor;
    final int computeMinor;
    final int multiprocessors;
    final int driverVersion;
    final int runtimeVersion;

    private CudaDevice(MemorySegment context, MemorySegment stream, String name, int[] capability, int multiprocessors,
                       int driverVersion, int runtimeVersion) {
        this.context = context;
        this.stream = stream;
        this.name = name;
        this.computeMajor = capability[0];
        this.computeMinor = capability[1];
        this.multiprocessors = multiprocessors;
        this.driverVersion = driverVersion;
        this.runtimeVersion = runtimeVersion;
    }

    static CudaDevice open(int ordinal) {
        LatheNative.load();
        int runtime = LatheNative.runtimeVersion();
        int driver = LatheNative.driverVersion();
        MemorySegment context = LatheNative.contextCreate(ordinal);
        try {
            MemorySegment stream = LatheNative.streamCreate(context);
            return new CudaDevice(context, stream, LatheNative.deviceName(context),
                    LatheNative.deviceComputeCapability(context), LatheNative.deviceMultiprocessors(context), driver,
                    runtime);
        } catch (RuntimeException e) {
            LatheNative.contextDestroy(context);
            throw e;
        }
    }

    /** {@code {freeBytes, totalBytes}} now. */
    long[] memory() {
        return LatheNative.deviceMemory(context);
    }

    void synchronize() {
        LatheNative.streamSynchronize(stream);
    }

    static String version(int v) {
        return (v / 1000) + "." + (v % 1000) / 10;
    }

    String describe() {
        long[] mem = memory();
        return String.format("cuda (%s, sm_%d%d, %d SMs, %.1f of %.1f GiB free, driver CUDA %s, runtime %s)", name,
                computeMajor, computeMinor, multiprocessors, mem[0] / (double) (1L << 30), mem[1] / (double) (1L << 30),
                version(driverVersion), version(runtimeVersion));
    }

    @Override
    public void close() {
        try {
            LatheNative.streamSynchronize(stream);
            LatheNative.streamDestroy(stream);
        } finally {
            LatheNative.contextDestroy(context);
        }
    }
}
