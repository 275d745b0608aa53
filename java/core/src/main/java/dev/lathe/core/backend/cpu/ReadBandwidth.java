package dev.lathe.core.backend.cpu;

import dev.lathe.core.concurrent.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Measures how fast this machine streams memory into the cores: the bound a memory-bound matvec
 * (a decode step) can reach. Sums a buffer larger than the caches with vector loads, split
 * across {@code threads} like a matmul's rows.
 */
public final class ReadBandwidth {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private ReadBandwidth() {
    }

    /** Median GB/s (1e9 bytes per second) over {@code repeats} passes of a {@code bytes}-byte buffer. */
    public static double measure(long bytes, int threads, int repeats) {
        long floats = bytes / Float.BYTES / F.length() * F.length();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buffer = arena.allocate(floats * Float.BYTES, 64);
            for (long i = 0; i < floats; i += 1024) {
                buffer.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, 1f); // touch every page
            }
            int chunks = (int) Math.min(Integer.MAX_VALUE, floats / (64 * 1024));
            long perChunk = floats / chunks / F.length() * F.length();
            double[] gbPerSecond = new double[repeats];
            float[] sink = new float[chunks];
            for (int r = 0; r < repeats + 1; r++) {
                long start = System.nanoTime();
                Parallel.forRange(chunks, threads, (from, to) -> {
                    for (int c = from; c < to; c++) {
                        sink[c] = sum(buffer, c * perChunk * Float.BYTES, perChunk);
                    }
                });
                long nanos = System.nanoTime() - start;
                if (r > 0) { // the first pass warms up the JIT
                    gbPerSecond[r - 1] = (double) chunks * perChunk * Float.BYTES / nanos;
                }
            }
            if (Float.isNaN(sink[0])) {
                throw new IllegalStateException("unreachable: keeps the sums alive");
            }
            Arrays.sort(gbPerSecond);
            return gbPerSecond[repeats / 2];
        }
    }

    private static float sum(MemorySegment buffer, long byteOffset, long count) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        long step = F.vectorByteSize();
        long end = byteOffset + count * Float.BYTES;
        long i = byteOffset;
        for (; i + 4 * step <= end; i += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, buffer, i, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(F, buffer, i + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(F, buffer, i + 2 * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(F, buffer, i + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        for (; i + step <= end; i += step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, buffer, i, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }
}
