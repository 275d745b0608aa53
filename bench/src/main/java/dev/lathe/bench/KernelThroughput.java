package dev.lathe.bench;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * The kernels' compute ceiling, next to {@link MatVecBenchmark}'s memory-bound figures: one thread
 * runs {@code dot} (and {@code dotRows} with 4 inputs) over a matrix small enough to stay in the
 * L2 cache ([64, 8192]), timed by the thread's CPU time, so other processes on a shared machine
 * disturb it less than wall-clock timing. A kernel whose in-cache GB/s here is not well above the
 * machine's per-thread read bandwidth cannot reach that bandwidth in the matvec.
 *
 * <p>Also prints the bytes allocated per call: a hot kernel that allocates has lost C2's Vector
 * API intrinsics (its vectors became heap objects) and is 10-100x slower.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.lathe.bench.KernelThroughput [F32,Q8_0,...]}
 */
public final class KernelThroughput {
    private KernelThroughput() {
    }

    private static final int ROWS = 64;
    private static final int COLS = 8192;
    private static final int REPS = 200;

    public static void main(String[] args) {
        String[] formats = args.length > 0 ? args[0].split(",")
                : new String[] {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        System.out.printf("%-13s %12s %14s %10s %22s %10s%n", "type", "dot GB/s", "dot Gvalues/s", "B/dot", "dotRows4 Ginputs/s", "B/call");
        for (String name : formats) {
            WeightMatrix matrix;
            if (name.contains("2:4") || name.startsWith("INT")) { // Lathe formats, as Sparse24MatVecBenchmark builds them
                matrix = Sparse24MatVecBenchmark.matrix(Sparse24MatVecBenchmark.parse(name), ROWS, Arena.ofAuto());
            } else {
                GgmlType type = GgmlType.valueOf(name);
                MemorySegment data = Arena.ofAuto().allocate(type.bytesFor(COLS, "bench") * ROWS, 64);
                fill(type, data, type.bytesFor(COLS, "bench"));
                matrix = WeightMatrices.of("bench", type, ROWS, COLS, data);
            }
            long rowBytes = matrix.rowBytes();
            SplittableRandom random = new SplittableRandom(3);
            float[] x = new float[4 * COLS];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextDouble(-1, 1);
            }
            float[] out = new float[4 * ROWS];
            float sink = 0;
            for (int rep = 0; rep < 3000; rep++) { // warm-up: C2 compiles the kernels
                for (int r = 0; r < ROWS; r++) {
                    sink += matrix.dot(r, x, 0);
                }
            }
            long bestDot = Long.MAX_VALUE;
            long allocatedBefore = threads.getCurrentThreadAllocatedBytes();
            for (int round = 0; round < 5; round++) {
                long start = threads.getCurrentThreadCpuTime();
                for (int rep = 0; rep < REPS; rep++) {
                    for (int r = 0; r < ROWS; r++) {
                        sink += matrix.dot(r, x, 0);
                    }
                }
                bestDot = Math.min(bestDot, threads.getCurrentThreadCpuTime() - start);
            }
            long bytesPerDot = (threads.getCurrentThreadAllocatedBytes() - allocatedBefore) / (5L * REPS * ROWS);
            for (int rep = 0; rep < 1000; rep++) {
                matrix.dotRows(0, ROWS, x, COLS, 4, out, 0, ROWS);
            }
            long bestRows = Long.MAX_VALUE;
            allocatedBefore = threads.getCurrentThreadAllocatedBytes();
            for (int round = 0; round < 5; round++) {
                long start = threads.getCurrentThreadCpuTime();
                for (int rep = 0; rep < REPS; rep++) {
                    matrix.dotRows(0, ROWS, x, COLS, 4, out, 0, ROWS);
                }
                bestRows = Math.min(bestRows, threads.getCurrentThreadCpuTime() - start);
            }
            long bytesPerCall = (threads.getCurrentThreadAllocatedBytes() - allocatedBefore) / (5L * REPS);
            System.out.printf("%-13s %12.2f %14.2f %10d %22.2f %10d%n", name,
                    (double) rowBytes * ROWS * REPS / bestDot, (double) COLS * ROWS * REPS / bestDot, bytesPerDot,
                    4.0 * COLS * ROWS * REPS / bestRows, bytesPerCall);
            if (sink == 42) {
                System.out.println();
            }
        }
    }

    /** Encodable formats from random floats; the others random quants with small f16 scales. */
    private static void fill(GgmlType type, MemorySegment data, long rowBytes) {
        SplittableRandom random = new SplittableRandom(1);
        if (WeightEncoder.canEncode(type)) {
            float[] row = new float[COLS];
            for (int r = 0; r < ROWS; r++) {
                for (int i = 0; i < COLS; i++) {
                    row[i] = (float) random.nextDouble(-1, 1);
                }
                WeightEncoder.encodeRow(type, row, 0, COLS, data, r * rowBytes);
            }
            return;
        }
        for (long i = 0; i < data.byteSize(); i++) {
            data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        }
        int[] halfFields = switch (type) {
            case Q6_K -> new int[] {208};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            default -> new int[] {0};
        };
        ValueLayout.OfShort half = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long block = 0; block < data.byteSize(); block += type.blockBytes) {
            for (int field : halfFields) {
                data.set(half, block + field, Float.floatToFloat16(0.01f));
            }
        }
    }
}
