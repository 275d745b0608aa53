package dev.lathe.bench;

import dev.lathe.core.concurrent.Parallel;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.util.Arrays;

/**
 * The 2:4 speed-up measured in pairs, for a shared, noisy machine: one dense matvec then one
 * 2:4 matvec of the same shape ({@link Sparse24MatVecBenchmark}'s matrices), repeated; each
 * round's ratio dense / 2:4 is taken while both ran under the same load, and the median ratio
 * is reported with the median times. Not JMH: a complement to {@link Sparse24MatVecBenchmark},
 * whose configurations run minutes apart and so meet different loads.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar
 * dev.lathe.bench.Sparse24Paired [DENSE,SPARSE] [threads] [rounds]} (default F16,2:4-F16 1 60).
 */
public final class Sparse24Paired {
    private Sparse24Paired() {
    }

    public static void main(String[] args) {
        String[] pair = (args.length > 0 ? args[0] : "F16,2:4-F16").split(",");
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 60;
        int rows = Sparse24MatVecBenchmark.ROWS;
        try (Arena arena = Arena.ofShared()) {
            WeightMatrix dense = Sparse24MatVecBenchmark.matrix(Sparse24MatVecBenchmark.parse(pair[0]), rows, arena);
            WeightMatrix sparse = Sparse24MatVecBenchmark.matrix(Sparse24MatVecBenchmark.parse(pair[1]), rows, arena);
            float[] x = new float[Sparse24MatVecBenchmark.COLS];
            Arrays.fill(x, 0.5f);
            float[] out = new float[rows];
            for (int i = 0; i < 10; i++) { // warm-up: C2 compiles both kernels
                matVecDense(dense, x, out, threads);
                matVecSparse(sparse, x, out, threads);
            }
            double[] denseMs = new double[rounds];
            double[] sparseMs = new double[rounds];
            double[] ratio = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                denseMs[r] = matVecDense(dense, x, out, threads);
                sparseMs[r] = matVecSparse(sparse, x, out, threads);
                ratio[r] = denseMs[r] / sparseMs[r];
            }
            System.out.printf("%s vs %s, [%d, %d], %d threads, %d rounds: %s %.1f ms (%.1f GB/s), %s %.1f ms (%.1f GB/s),"
                            + " speed-up median %.2fx (quartiles %.2f - %.2f)%n",
                    pair[0], pair[1], rows, Sparse24MatVecBenchmark.COLS, threads, rounds,
                    pair[0], median(denseMs), dense.byteSize() / median(denseMs) / 1e6,
                    pair[1], median(sparseMs), sparse.byteSize() / median(sparseMs) / 1e6,
                    median(ratio), quantile(ratio, 0.25), quantile(ratio, 0.75));
        }
    }

    // NOTE: two loops, one per matrix, so each w.dot call site sees one class, as in a JMH fork.
    // One shared loop made the site bimorphic; C2 then inlined both kernels into it and, over its
    // inlining budget, boxed IntGroupMatrix's vectors (INT4 ran 12x slower at one thread).
    private static double matVecDense(WeightMatrix w, float[] x, float[] out, int threads) {
        long start = System.nanoTime();
        Parallel.forRange(out.length, threads, (from, to) -> {
            for (int r = from; r < to; r++) {
                out[r] = w.dot(r, x, 0);
            }
        });
        return (System.nanoTime() - start) / 1e6;
    }

    private static double matVecSparse(WeightMatrix w, float[] x, float[] out, int threads) {
        long start = System.nanoTime();
        Parallel.forRange(out.length, threads, (from, to) -> {
            for (int r = from; r < to; r++) {
                out[r] = w.dot(r, x, 0);
            }
        });
        return (System.nanoTime() - start) / 1e6;
    }

    private static double median(double[] v) {
        return quantile(v, 0.5);
    }

    private static double quantile(double[] v, double q) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[(int) Math.round(q * (s.length - 1))];
    }
}
