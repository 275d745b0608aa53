package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.testing.TestRandom;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The flash prefill kernel (kernels/attention/flash_prefill.cuh) against the CPU backend's
 * attention: chunks of 1, 17, 64, 100 and 257 new tokens after 0, 5 and 300 cached tokens (the
 * prefix read through a shuffled block table, blocks of 16 and of 7 positions), GQA groups 1, 4
 * and 8, head_dim 64 and 128, f32, f16 and bf16 pools; output poisoned with NaN first. Needs a GPU:
 * tagged "gpu", run by bench/gpu/run.sh (GpuSuite).
 *
 * <p>Tolerance, per output element (the kernel header's bound): Q, K, V and P enter the tensor
 * cores as f16, u = 2^-11. A score is then off by at most 2u * S with S = scale * sum_d |q_d k_d|
 * (q and k each rounded once), a weight p by a relative u more, a V value (f32 pools) by a
 * relative u; so the normalized output moves by at most (2 * 2u S + 3u) max|v| over the window,
 * to first order. The check allows 1.25x that (the exponential's second-order term, the f32 sums)
 * plus 1e-6. f16 pools and bf16 pools within f16's range give exact K/V operands, so the bound is
 * loose for them; it is what the design promises, not what a run happens to give, and the run
 * prints the relative L2 error beside it.
 */
@Tag("gpu")
class FlashPrefillParityTest {
    private static final double U = Math.scalb(1.0, -11);

    static CudaBackend gpu;
    static CpuBackend cpu;

    @BeforeAll
    static void open() {
        gpu = CudaBackend.open(0, false, false);
        cpu = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()));
        System.out.println("[gpu] " + gpu.describe());
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    /** Every chunk length after each prefix, one batch of three sequences per (dtype, headDim, group, chunk). */
    @Test
    void flashPrefillMatchesTheCpu() {
        Random r = TestRandom.create("FlashPrefillParityTest");
        int[] prefixes = {0, 5, 300};
        int cases = 0;
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16, KvDtype.BF16}) {
            for (int headDim : new int[] {64, 128}) {
                for (int group : new int[] {1, 4, 8}) {
                    for (int chunk : new int[] {1, 17, 64, 100, 257}) {
                        int blockSize = (cases++ % 2 == 0) ? 16 : 7;
                        int[] chunks = new int[prefixes.length];
                        Arrays.fill(chunks, chunk);
                        check(r, dtype, 2 * group, 2, headDim, blockSize, prefixes, chunks);
                    }
                }
            }
        }
    }

    /** A ragged batch of chunks of different lengths and a decode token, in one launch. */
    @Test
    void flashPrefillRaggedBatch() {
        Random r = TestRandom.create("FlashPrefillParityTest.ragged");
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16, KvDtype.BF16}) {
            check(r, dtype, 32, 8, 128, 16, new int[] {0, 300, 5, 1000}, new int[] {257, 1, 100, 64});
            check(r, dtype, 12, 3, 64, 5, new int[] {40, 0}, new int[] {17, 130});
        }
    }

    /** Through CudaBackend.attention: with the switch on a prefill step takes the flash kernel, a decode step does not. */
    @Test
    void theSwitchRoutesPrefillStepsOnly() {
        try (CudaBackend on = CudaBackend.open(0, false, true)) {
            assertTrue(on.describe().contains("flash prefill on"), on.describe());
            Random r = TestRandom.create("FlashPrefillParityTest.switch");
            long before = on.flashPrefillLaunches();
            runThrough(on, r, new int[] {0}, new int[] {100});
            assertEquals(before + 1, on.flashPrefillLaunches(), "a 100-token prompt runs the flash kernel");
            runThrough(on, r, new int[] {100, 40}, new int[] {1, 1});
            assertEquals(before + 1, on.flashPrefillLaunches(), "decode tokens stay on the paged kernel");
        }
        // The switch off: the same prefill step stays on the paged kernel.
        long before = gpu.flashPrefillLaunches();
        runThrough(gpu, TestRandom.create("FlashPrefillParityTest.switchOff"), new int[] {0}, new int[] {100});
        assertEquals(before, gpu.flashPrefillLaunches(), "the switch is off: nothing changes");
    }

    private static void runThrough(CudaBackend backend, Random r, int[] context, int[] newTokens) {
        PagedBatch b = PagedBatch.of(r, 16, context, newTokens);
        int heads = 8;
        int kvHeads = 2;
        int headDim = 64;
        try (KvCache cache = backend.allocateKvCache(1, b.numBlocks(), 16, kvHeads, headDim, KvDtype.F32)) {
            fill(r, b, cache, null, kvHeads * headDim, backend);
            float[] q = CudaParityTest.gaussian(r, b.tokens() * heads * headDim, 1);
            Tensor out = backend.upload(new float[b.tokens() * heads * headDim], b.tokens(), heads * headDim);
            backend.attention(out, backend.upload(q, b.tokens(), heads * headDim), cache, 0, b.plan(), heads,
                    (float) (1 / Math.sqrt(headDim)));
            float[] values = backend.download(out);
            for (float v : values) {
                assertTrue(Float.isFinite(v));
            }
        }
    }

    /** A GPU tensor full of NaN: any element the kernel forgets to write fails the bound. */
    private static Tensor poisoned(int rows, int cols) {
        float[] nan = new float[rows * cols];
        Arrays.fill(nan, Float.NaN);
        return gpu.upload(nan, rows, cols);
    }

    /** Writes random K/V at every position of every sequence into the caches; returns them per sequence. */
    private static float[][][] fill(Random r, PagedBatch b, KvCache gpuCache, KvCache cpuCache, int kvCols,
                                    CudaBackend backend) {
        float[][][] kv = new float[b.context().length][][];
        for (int s = 0; s < b.context().length; s++) {
            int total = b.context()[s] + b.newTokens()[s];
            int[] slots = new int[total];
            for (int pos = 0; pos < total; pos++) {
                slots[pos] = b.slot(s, pos);
            }
            float[] k = CudaParityTest.gaussian(r, total * kvCols, 1);
            float[] v = CudaParityTest.gaussian(r, total * kvCols, 1);
            if (cpuCache != null) {
                cpu.writeKv(cpuCache, 0, new HostTensor(k, total, kvCols), new HostTensor(v, total, kvCols), slots);
            }
            backend.writeKv(gpuCache, 0, backend.upload(k, total, kvCols), backend.upload(v, total, kvCols), slots);
            kv[s] = new float[][] {k, v};
        }
        return kv;
    }

    private static void check(Random r, KvDtype dtype, int heads, int kvHeads, int headDim, int blockSize,
                              int[] context, int[] newTokens) {
        PagedBatch b = PagedBatch.of(r, blockSize, context, newTokens);
        int kvCols = kvHeads * headDim;
        int qCols = heads * headDim;
        int group = heads / kvHeads;
        String what = "flash prefill " + dtype.label() + " heads=" + heads + " kvHeads=" + kvHeads + " headDim="
                + headDim + " blockSize=" + blockSize + " context=" + Arrays.toString(context) + " new="
                + Arrays.toString(newTokens);
        try (KvCache cpuCache = cpu.allocateKvCache(1, b.numBlocks(), blockSize, kvHeads, headDim, dtype);
             KvCache gpuCache = gpu.allocateKvCache(1, b.numBlocks(), blockSize, kvHeads, headDim, dtype)) {
            float[][][] kv = fill(r, b, gpuCache, cpuCache, kvCols, gpu);
            float[] q = CudaParityTest.gaussian(r, b.tokens() * qCols, 1);
            float scale = (float) (1 / Math.sqrt(headDim));
            HostTensor expected = new HostTensor(b.tokens(), qCols);
            cpu.attention(expected, new HostTensor(q, b.tokens(), qCols), cpuCache, 0, b.plan(), heads, scale);
            Tensor out = poisoned(b.tokens(), qCols);
            gpu.flashAttention(out, gpu.upload(q, b.tokens(), qCols), gpuCache, 0, b.plan(), heads, scale);
            float[] actual = gpu.download(out);
            float[] want = expected.data();
            double diff = 0;
            double norm = 0;
            for (int s = 0; s < context.length; s++) {
                float[] k = kv[s][0];
                float[] v = kv[s][1];
                for (int i = 0; i < newTokens[s]; i++) {
                    int t = b.plan().seqStart()[s] + i;
                    int pos = b.plan().positions()[t];
                    for (int h = 0; h < heads; h++) {
                        int kvHead = h / group;
                        double sMax = 0;
                        double vMax = 0;
                        for (int j = 0; j <= pos; j++) {
                            double sum = 0;
                            for (int d = 0; d < headDim; d++) {
                                sum += Math.abs((double) q[t * qCols + h * headDim + d] * k[j * kvCols + kvHead * headDim + d]);
                                vMax = Math.max(vMax, Math.abs(v[j * kvCols + kvHead * headDim + d]));
                            }
                            sMax = Math.max(sMax, scale * sum);
                        }
                        double tolerance = 1.25 * (4 * U * sMax + 3 * U) * vMax + 1e-6;
                        for (int d = 0; d < headDim; d++) {
                            int idx = t * qCols + h * headDim + d;
                            double err = Math.abs((double) actual[idx] - want[idx]);
                            if (!(err <= tolerance)) { // NaN fails too
                                throw new AssertionError(what + ": token " + t + " (position " + pos + ") head " + h
                                        + " dim " + d + " is " + actual[idx] + ", expected " + want[idx] + " +- "
                                        + tolerance);
                            }
                            diff += err * err;
                            norm += (double) want[idx] * want[idx];
                        }
                    }
                }
            }
            System.out.printf("[flash] %s: relative L2 error %.2e%n", what, Math.sqrt(diff / Math.max(norm, 1e-30)));
        }
    }
}
