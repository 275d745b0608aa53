package dev.lathe.bench;

import dev.lathe.core.backend.Parallel;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
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
 * One matrix-vector product {@code out[rows] = W[rows, cols] x[cols]} per operation, for each
 * weight format, with the rows split over {@code threads} threads ({@link Parallel#forRange}).
 * The matrix is about {@link #TARGET_BYTES} (far beyond the caches), so the product is bound by
 * memory bandwidth; {@link MatVecReport} turns the times into GB/s and compares them with
 * {@link MatVecReadBandwidth}, a plain vector sum over the same number of bytes.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class MatVecBenchmark {
    static final int ROWS = 4096;
    static final long TARGET_BYTES = 128L << 20;

    @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    public String format;

    @Param({"1", "2"})
    public int threads;

    private Arena arena;
    private WeightMatrix matrix; // [ROWS, cols(format)]
    private float[] x;           // [cols]
    private float[] out;         // [ROWS]

    /** Columns for {@code type}: the widest multiple of 256 that keeps the matrix within {@link #TARGET_BYTES}. */
    static int cols(GgmlType type) {
        long valuesPerRow = TARGET_BYTES / ROWS * type.blockSize / type.blockBytes;
        return (int) (valuesPerRow / 256 * 256);
    }

    /** The matrix's size in bytes for {@code type}. */
    static long matrixBytes(GgmlType type) {
        return type.bytesFor(cols(type), "bench") * ROWS;
    }

    @Setup(Level.Trial)
    public void setUp() {
        GgmlType type = GgmlType.valueOf(format);
        int cols = cols(type);
        arena = Arena.ofShared();
        matrix = WeightMatrices.of("bench", type, ROWS, cols, randomMatrix(type, cols, arena));
        SplittableRandom random = new SplittableRandom(42);
        x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) random.nextDouble(-1, 1);
        }
        out = new float[ROWS];
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public float[] matVec() {
        WeightMatrix w = matrix;
        float[] input = x;
        float[] output = out;
        Parallel.forRange(ROWS, threads, (start, end) -> {
            for (int r = start; r < end; r++) {
                output[r] = w.dot(r, input, 0);
            }
        });
        return output;
    }

    /**
     * Realistic blocks: the formats Lathe can write are encoded from random floats; Q4_K and Q6_K
     * (no quantizer yet) get random quants with small, normal f16 scales, so the arithmetic never
     * meets NaN, infinity or subnormals, which could change the timing.
     */
    private static MemorySegment randomMatrix(GgmlType type, int cols, Arena arena) {
        SplittableRandom random = new SplittableRandom(7);
        long rowBytes = type.bytesFor(cols, "bench");
        MemorySegment data = arena.allocate(rowBytes * ROWS, 64);
        if (WeightEncoder.canEncode(type)) {
            float[] row = new float[cols];
            for (int r = 0; r < ROWS; r++) {
                for (int i = 0; i < cols; i++) {
                    row[i] = (float) random.nextDouble(-1, 1);
                }
                WeightEncoder.encodeRow(type, row, 0, cols, data, r * rowBytes);
            }
            return data;
        }
        byte[] bytes = new byte[(int) rowBytes];
        int[] halfFields = type == GgmlType.Q6_K ? new int[] {208} : new int[] {0, 2};
        ValueLayout.OfShort half = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < ROWS; r++) {
            random.nextBytes(bytes);
            MemorySegment rowData = data.asSlice(r * rowBytes, rowBytes);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, rowData, 0, rowBytes);
            for (long block = 0; block < rowBytes; block += type.blockBytes) {
                for (int field : halfFields) {
                    rowData.set(half, block + field, Float.floatToFloat16((float) random.nextDouble(0.001, 0.01)));
                }
            }
        }
        return data;
    }
}
