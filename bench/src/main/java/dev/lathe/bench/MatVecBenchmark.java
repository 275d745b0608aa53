package dev.lathe.bench;

import dev.lathe.core.concurrent.Parallel;
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
 * One matrix-vector product {@code out[rows] = W[rows, COLS] x[COLS]} per operation, for each
 * weight format, with the rows split over {@code threads} threads ({@link Parallel#forRange}).
 * The matrix is about {@link #TARGET_BYTES} (far beyond the caches), so the product is bound by
 * memory bandwidth; {@link MatVecReport} turns the times into GB/s and compares them with
 * {@link MatVecReadBandwidth}, a plain vector sum over the same number of bytes.
 */
// NOTE: the width is fixed and the row count adapts to the format, not the other way round: with
// 128 MiB of Q4_0 in 4096 rows, x would be 58k floats (232 KB), out of L1, and every weight byte
// would drag 7 bytes of x through L2; that measured x, not the kernel. 8192 columns (32 KB of x)
// is a real model's width (Llama 3 8B's FFN input is 4096, its down projection 14336).
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class MatVecBenchmark {
    static final int COLS = 8192;
    // NOTE: 512 MiB, not 128: the development machine reports a 260 MiB L3 (shared by the host),
    // and the point is to measure what streams from memory.
    static final long TARGET_BYTES = 512L << 20;

    @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    public String format;

    @Param({"1", "2"})
    public int threads;

    private Arena arena;
    private WeightMatrix matrix; // [rows(format), COLS]
    private float[] x;           // [COLS]
    private float[] out;         // [rows(format)]

    /** Rows for {@code type}: as many as fit in {@link #TARGET_BYTES}. */
    static int rows(GgmlType type) {
        return (int) (TARGET_BYTES / type.bytesFor(COLS, "bench"));
    }

    /** The matrix's size in bytes for {@code type}. */
    static long matrixBytes(GgmlType type) {
        return type.bytesFor(COLS, "bench") * rows(type);
    }

    @Setup(Level.Trial)
    public void setUp() {
        GgmlType type = GgmlType.valueOf(format);
        int rows = rows(type);
        arena = Arena.ofShared();
        matrix = WeightMatrices.of("bench", type, rows, COLS, randomMatrix(type, rows, arena));
        SplittableRandom random = new SplittableRandom(42);
        x = new float[COLS];
        for (int i = 0; i < COLS; i++) {
            x[i] = (float) random.nextDouble(-1, 1);
        }
        out = new float[rows];
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
        Parallel.forRange(output.length, threads, (start, end) -> {
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
    private static MemorySegment randomMatrix(GgmlType type, int rows, Arena arena) {
        SplittableRandom random = new SplittableRandom(7);
        long rowBytes = type.bytesFor(COLS, "bench");
        MemorySegment data = arena.allocate(rowBytes * rows, 64);
        if (WeightEncoder.canEncode(type)) {
            float[] pool = new float[1 << 16]; // rows are windows of one random pool: fast to fill
            for (int i = 0; i < pool.length; i++) {
                pool[i] = (float) random.nextDouble(-1, 1);
            }
            float[] row = new float[COLS];
            for (int r = 0; r < rows; r++) {
                int start = random.nextInt(pool.length - COLS);
                System.arraycopy(pool, start, row, 0, COLS);
                WeightEncoder.encodeRow(type, row, 0, COLS, data, r * rowBytes);
            }
            return data;
        }
        byte[] bytes = new byte[(int) rowBytes];
        int[] halfFields = type == GgmlType.Q6_K ? new int[] {208} : new int[] {0, 2};
        ValueLayout.OfShort half = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < rows; r++) {
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
