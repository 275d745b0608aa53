package dev.lathe.bench;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One decode step's paged attention (every layer, one query token at the end of a {@code ctx}-token
 * context) over f32, f16, bf16 and int8 KV pools, side by side in one process: each round runs every
 * type in a rotated order, {@link #STEPS} steps each, timed by the thread's CPU time on one thread
 * (so other processes on a shared machine disturb it less than wall-clock timing). Prints per type
 * the median, min and max microseconds per step over the rounds, and per round the ratio to f32,
 * whose median and spread are the side-by-side figures. Defaults are the m200 synthetic model's
 * attention (12 layers, 16 heads, 4 KV heads, headDim 64): 24 MB of f32 K/V per step at ctx 1024,
 * more than the caches hold, as in a real decode step (which also streams the weights, not here).
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar
 * dev.lathe.bench.KvAttentionThroughput [ctx=1024] [layers=12] [heads=16] [kvHeads=4] [headDim=64] [rounds=9]
 * [types=f32,f16,bf16,int8]}. The first type is the reference of the ratios. NOTE: every type runs
 * through the same attention method, so each one added changes what C2 sees there; run two types
 * at a time ({@code f32,f16}) to see each path as a single-type process (lathe bench) compiles it.
 */
public final class KvAttentionThroughput {
    private static final int BLOCK_SIZE = 16;
    private static final int STEPS = 20;

    private KvAttentionThroughput() {
    }

    public static void main(String[] args) {
        int ctx = arg(args, 0, 1024);
        int layers = arg(args, 1, 12);
        int heads = arg(args, 2, 16);
        int kvHeads = arg(args, 3, 4);
        int headDim = arg(args, 4, 64);
        int rounds = arg(args, 5, 9);
        KvDtype[] types = Arrays.stream((args.length > 6 ? args[6] : "f32,f16,bf16,int8").split(","))
                .map(t -> KvDtype.parse(t, "types")).toArray(KvDtype[]::new);
        int blocks = (ctx + BLOCK_SIZE - 1) / BLOCK_SIZE;
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            table[b] = blocks - 1 - b; // not in pool order
        }
        int rowFloats = kvHeads * headDim;
        SplittableRandom random = new SplittableRandom(11);
        CpuBackend backend = new CpuBackend(1);
        // K, V and q come from embedding lookups of random f32 tables: the public way to fill a tensor.
        Tensor k = backend.allocate(ctx, rowFloats);
        Tensor v = backend.allocate(ctx, rowFloats);
        Tensor q = backend.allocate(1, heads * headDim);
        Tensor out = backend.allocate(1, heads * headDim);
        int[] all = new int[ctx];
        Arrays.setAll(all, i -> i);
        backend.embed(k, table(random, ctx, rowFloats), all);
        backend.embed(v, table(random, ctx, rowFloats), all);
        backend.embed(q, table(random, 1, heads * headDim), new int[] {0});
        BatchPlan prefill = BatchPlan.singleSequence(all, 0, table, BLOCK_SIZE, false);
        BatchPlan decode = BatchPlan.singleSequence(new int[] {0}, ctx - 1, table, BLOCK_SIZE, false);
        float scale = (float) (1 / Math.sqrt(headDim));

        List<KvCache> caches = new ArrayList<>();
        for (KvDtype type : types) {
            KvCache cache = backend.allocateKvCache(layers, blocks, BLOCK_SIZE, kvHeads, headDim, type);
            for (int layer = 0; layer < layers; layer++) {
                backend.writeKv(cache, layer, k, v, prefill.slotMapping());
            }
            caches.add(cache);
        }
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        for (int warm = 0; warm < 10; warm++) { // C2 compiles every type's path
            for (KvCache cache : caches) {
                for (int i = 0; i < STEPS; i++) {
                    step(backend, out, q, cache, decode, heads, scale);
                }
            }
        }
        double[][] ns = new double[types.length][rounds];
        for (int round = 0; round < rounds; round++) {
            for (int j = 0; j < types.length; j++) {
                int t = (j + round) % types.length;
                long start = threads.getCurrentThreadCpuTime();
                for (int i = 0; i < STEPS; i++) {
                    step(backend, out, q, caches.get(t), decode, heads, scale);
                }
                ns[t][round] = (double) (threads.getCurrentThreadCpuTime() - start) / STEPS;
            }
        }
        System.out.printf("decode-step attention: ctx %d, %d layers, %d heads, %d kv heads, headDim %d, %d rounds x %d steps, %s%n",
                ctx, layers, heads, kvHeads, headDim, rounds, STEPS, backend.describe());
        System.out.printf("%-5s %14s %14s %22s   %s%n", "KV", "K+V bytes", "us/step median", "(min, max)", "vs f32 per round: median (min, max)");
        for (int t = 0; t < types.length; t++) {
            double[] ratio = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                ratio[r] = ns[t][r] / ns[0][r];
            }
            long bytes = 2L * layers * ctx * kvHeads * types[t].bytesPerVector(headDim);
            System.out.printf("%-5s %14d %14.1f %22s   %s%n", types[t].label(), bytes, median(ns[t]) / 1e3,
                    String.format("(%.1f, %.1f)", min(ns[t]) / 1e3, max(ns[t]) / 1e3),
                    String.format("%.3f (%.3f, %.3f)", median(ratio), min(ratio), max(ratio)));
        }
        caches.forEach(KvCache::close);
    }

    private static void step(CpuBackend backend, Tensor out, Tensor q, KvCache cache, BatchPlan decode, int heads, float scale) {
        for (int layer = 0; layer < cache.layers(); layer++) {
            backend.attention(out, q, cache, layer, decode, heads, scale);
        }
    }

    private static WeightMatrix table(SplittableRandom random, int rows, int cols) {
        MemorySegment data = Arena.ofAuto().allocate((long) rows * cols * Float.BYTES, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            data.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) random.nextGaussian());
        }
        return WeightMatrices.of("random", GgmlType.F32, rows, cols, data);
    }

    private static int arg(String[] args, int i, int fallback) {
        return args.length > i ? Integer.parseInt(args[i]) : fallback;
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double min(double[] x) {
        return Arrays.stream(x).min().orElseThrow();
    }

    private static double max(double[] x) {
        return Arrays.stream(x).max().orElseThrow();
    }
}
