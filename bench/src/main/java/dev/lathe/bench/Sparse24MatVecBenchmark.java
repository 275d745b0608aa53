package dev.lathe.bench;

import dev.lathe.core.concurrent.Parallel;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
 * The 2:4 sparse matvec against the dense kernel of the same value type, on the same shape
 * {@code [ROWS, 8192]}: {@code F16} vs {@code 2:4-F16}, {@code INT4-g128} vs {@code 2:4-INT4-g128}.
 * Dense F16 is 512 MiB (beyond the 260 MiB L3 the development machine reports), so every
 * format streams from memory, as {@link MatVecBenchmark}; the 2:4 matrix holds the same
 * weights with half of every group of 4 pruned by magnitude. The expected gain is the byte
 * ratio (F16: 2 vs 1.125 bytes per weight, 1.78x) when the kernel keeps up with memory.
 */
// NOTE: the matrix is one block of BLOCK_ROWS encoded rows repeated: encoding 64k rows one by one
// takes minutes, and a matvec reads every row's bytes wherever they came from.
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class Sparse24MatVecBenchmark {
    static final int COLS = MatVecBenchmark.COLS;
    static final int ROWS = 32768;
    private static final int BLOCK_ROWS = 256;

    @Param({"F16", "2:4-F16", "INT4-g128", "2:4-INT4-g128"})
    public String format;

    @Param({"1", "2"})
    public int threads;

    private Arena arena;
    private WeightMatrix matrix; // [ROWS, COLS]
    private float[] x;           // [COLS]
    private float[] out;         // [ROWS]

    static WeightFormat parse(String name) {
        return switch (name) {
            case "F16" -> GgmlType.F16;
            case "2:4-F16" -> LatheFormat.sparse24F16();
            case "INT4-g128" -> LatheFormat.intGroup(4, 128, true);
            case "2:4-INT4-g128" -> LatheFormat.sparse24Int4(128, true);
            default -> throw new IllegalArgumentException(name);
        };
    }

    @Setup(Level.Trial)
    public void setUp() {
        WeightFormat f = parse(format);
        arena = Arena.ofShared();
        matrix = matrix(f, ROWS, arena);
        SplittableRandom random = new SplittableRandom(11);
        x = new float[COLS];
        for (int i = 0; i < COLS; i++) {
            x[i] = (float) random.nextDouble(-1, 1);
        }
        out = new float[ROWS];
    }

    /** A {@code [rows, COLS]} matrix in {@code f} (rows a multiple of 256, or fewer than 256): random values, 2:4-pruned by magnitude for the 2:4 formats. */
    static WeightMatrix matrix(WeightFormat f, int rows, Arena arena) {
        int blockRows = Math.min(BLOCK_ROWS, rows);
        SplittableRandom random = new SplittableRandom(7);
        float[] block = new float[blockRows * COLS];
        for (int i = 0; i < block.length; i++) {
            block[i] = (float) random.nextDouble(-1, 1);
        }
        boolean sparse = f instanceof LatheFormat l && l.isSparse24();
        if (sparse) {
            for (int g = 0; g < block.length / 4; g++) { // 2:4 by magnitude: the two smallest |w| of 4 go
                for (int drop = 0; drop < 2; drop++) {
                    int smallest = -1;
                    for (int c = 0; c < 4; c++) {
                        float v = block[4 * g + c];
                        if (v != 0 && (smallest < 0 || Math.abs(v) < Math.abs(block[4 * g + smallest]))) {
                            smallest = c;
                        }
                    }
                    block[4 * g + smallest] = 0;
                }
            }
        }
        MemorySegment encoded = switch (f) {
            case GgmlType t -> WeightEncoder.encode(t, block, blockRows, COLS, arena);
            case LatheFormat l -> LatheEncoder.encode(l, block, blockRows, COLS, arena);
        };
        int copies = rows / blockRows;
        MemorySegment data = arena.allocate(encoded.byteSize() * copies, 64);
        if (sparse) { // two planes: tile each
            long blockMeta = (long) blockRows * (COLS / LatheFormat.SPARSE24_COLUMNS_PER_WORD) * 4;
            long blockValues = encoded.byteSize() - blockMeta;
            for (int b = 0; b < copies; b++) {
                MemorySegment.copy(encoded, 0, data, b * blockValues, blockValues);
                MemorySegment.copy(encoded, blockValues, data, blockValues * copies + b * blockMeta, blockMeta);
            }
        } else {
            for (int b = 0; b < copies; b++) {
                MemorySegment.copy(encoded, 0, data, b * encoded.byteSize(), encoded.byteSize());
            }
        }
        return WeightMatrices.of("bench", f, rows, COLS, data);
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
}
