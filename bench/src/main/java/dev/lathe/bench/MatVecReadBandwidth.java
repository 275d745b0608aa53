package dev.lathe.bench;

import dev.lathe.core.concurrent.Parallel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.DoubleAdder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The read-bandwidth ceiling for {@link MatVecBenchmark}: the sum of a {@link #BYTES}-byte
 * segment with vector loads and four accumulators, split over {@code threads} threads the same
 * way. A matvec at this speed is limited by memory, not by its arithmetic.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class MatVecReadBandwidth {
    static final long BYTES = MatVecBenchmark.TARGET_BYTES;
    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    private static final int CHUNKS = 4096; // units of work handed to the threads

    @Param({"1", "2"})
    public int threads;

    private Arena arena;
    private MemorySegment data;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        data = arena.allocate(BYTES, 64);
        data.fill((byte) 0x3F); // every float is 0x3F3F3F3F = 0.747: normal, no slow paths
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public double sum() {
        DoubleAdder total = new DoubleAdder();
        long chunkBytes = BYTES / CHUNKS;
        MemorySegment segment = data;
        Parallel.forRange(CHUNKS, threads, (start, end) ->
                total.add(sum(segment, start * chunkBytes, end * chunkBytes)));
        return total.sum();
    }

    private static float sum(MemorySegment segment, long from, long to) {
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        long step = FLOATS.vectorByteSize();
        for (long at = from; at <= to - 4 * step; at += 4 * step) {
            acc0 = acc0.add(FloatVector.fromMemorySegment(FLOATS, segment, at, ByteOrder.LITTLE_ENDIAN));
            acc1 = acc1.add(FloatVector.fromMemorySegment(FLOATS, segment, at + step, ByteOrder.LITTLE_ENDIAN));
            acc2 = acc2.add(FloatVector.fromMemorySegment(FLOATS, segment, at + 2 * step, ByteOrder.LITTLE_ENDIAN));
            acc3 = acc3.add(FloatVector.fromMemorySegment(FLOATS, segment, at + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
    }
}
