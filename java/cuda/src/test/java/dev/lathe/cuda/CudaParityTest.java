package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Every CUDA op against the CPU backend (the reference) on fresh random inputs of awkward sizes,
 * outputs poisoned with NaN before each run. Needs a GPU: tagged "gpu", excluded from normal test
 * runs, run by bench/gpu/run.sh. Tolerances are relative L2 errors ||gpu - cpu|| / ||cpu||, each
 * with the reason next to it.
 */
@Tag("gpu")
class CudaParityTest {
    private static final int[] AWKWARD = {1, 3, 17, 111};

    static CudaBackend gpu;
    static CpuBackend cpu;
    static Arena arena;

    @BeforeAll
    static void open() {
        gpu = CudaBackend.open(0);
        cpu = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()));
        arena = Arena.ofShared();
        System.out.println("[gpu] " + gpu.describe());
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
        if (arena != null) {
            arena.close();
        }
    }

    static float[] gaussian(Random r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        return v;
    }

    static Tensor gpuTensor(float[] values, int rows, int cols) {
        return gpu.upload(values, rows, cols);
    }

    /** A GPU tensor full of NaN: any element a kernel forgets to write fails the comparison. */
    static Tensor poisoned(int rows, int cols) {
        float[] nan = new float[rows * cols];
        Arrays.fill(nan, Float.NaN);
        return gpu.upload(nan, rows, cols);
    }

    static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < expected.length; i++) {
            if (Float.isNaN(actual[i]) != Float.isNaN(expected[i])) {
                throw new AssertionError(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
            double d = (double) actual[i] - expected[i];
            diff += d * d;
            norm += (double) expected[i] * expected[i];
        }
        double rel = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
        assertTrue(rel <= tolerance, what + ": relative error " + rel + " > " + tolerance);
    }

    static WeightMatrix weight(GgmlType type, float[] values, int rows, int cols) {
        MemorySegment data = WeightEncoder.encode(type, values, rows, cols, arena);
        return WeightMatrices.of("w" + rows + "x" + cols, type, rows, cols, data);
    }

    @Test
    void embed() {
        Random r = TestRandom.create("CudaParityTest.embed");
        for (GgmlType type : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0}) {
            int vocab = 111;
            int dim = type == GgmlType.Q8_0 || type == GgmlType.Q4_0 ? 96 : 17;
            WeightMatrix table = weight(type, gaussian(r, vocab * dim, 1), vocab, dim);
            int[] tokens = {0, 110, 5, 5, 64, 3, 109};
            HostTensor expected = new HostTensor(tokens.length, dim);
            cpu.embed(expected, table, tokens);
            Tensor out = poisoned(tokens.length, dim);
            gpu.embed(out, gpu.upload(table), tokens);
            // Dequantizing is the same float product on both sides: exact.
            assertArrayEquals(expected.data(), gpu.download(out), "embed " + type);
        }
        Tensor out = poisoned(1, 17);
        WeightMatrix table = gpu.upload(weight(GgmlType.F32, gaussian(r, 3 * 17, 1), 3, 17));
        assertThrows(IllegalArgumentException.class, () -> gpu.embed(out, table, new int[] {3}));
    }

    @Test
    void rmsNorm() {
        Random r = TestRandom.create("CudaParityTest.rmsNorm");
        for (int rows : AWKWARD) {
            for (int cols : new int[] {1, 17, 769, 4096}) {
                float[] x = gaussian(r, rows * cols, 3);
                WeightMatrix w = weight(GgmlType.F32, gaussian(r, cols, 1), 1, cols);
                HostTensor expected = new HostTensor(rows, cols);
                cpu.rmsNorm(expected, new HostTensor(x.clone(), rows, cols), w, 1e-5f);
                Tensor out = poisoned(rows, cols);
                gpu.rmsNorm(out, gpuTensor(x, rows, cols), gpu.upload(w), 1e-5f);
                // f32 sums in another order: a few ulps on the scale.
                assertClose(expected.data(), gpu.download(out), 1e-5, "rmsNorm " + rows + "x" + cols);
                // In place (out == x), as the model calls it for the final norm.
                Tensor inPlace = gpuTensor(x, rows, cols);
                gpu.rmsNorm(inPlace, inPlace, gpu.upload(w), 1e-5f);
                assertClose(expected.data(), gpu.download(inPlace), 1e-5, "rmsNorm in place " + rows + "x" + cols);
            }
        }
    }

    @Test
    void matmulEveryLayout() {
        Random r = TestRandom.create("CudaParityTest.matmul");
        GgmlType[] types = {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0};
        for (GgmlType type : types) {
            boolean quantized = type == GgmlType.Q8_0 || type == GgmlType.Q4_0;
            int[] colsList = quantized ? new int[] {32, 96, 4096} : new int[] {1, 17, 111, 768, 4096};
            for (int rows : new int[] {1, 3, 17, 111, 769}) {
                for (int cols : colsList) {
                    for (int tokens : new int[] {1, 3, 5}) {  // the GEMV; 8+ tokens: tensorCoreMatmul
                        WeightMatrix w = weight(type, gaussian(r, rows * cols, 0.05), rows, cols);
                        float[] x = gaussian(r, tokens * cols, 1);
                        Tensor out = poisoned(tokens, rows);
                        gpu.matmul(out, gpuTensor(x, tokens, cols), gpu.upload(w));
                        // Same weights, f32 accumulation in another order: error ~ sqrt(cols) ulps.
                        assertDotsClose(w, x, tokens, gpu.download(out), 2e-5,
                                "matmul " + type + " " + rows + "x" + cols + " T=" + tokens);
                    }
                }
            }
        }
    }

    @Test
    void matmulAndEmbedOfKQuants() {
        Random r = TestRandom.create("CudaParityTest.kQuants");
        // Q4_K / Q5_K / Q6_K are read in ggml's layout: the same weights up to an fma, f32 sums
        // in another order.
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q5_K}) {
            double tolerance = 2e-5;
            for (int rows : new int[] {1, 3, 33, 769}) {
                for (int cols : new int[] {256, 768, 4096}) {
                    for (int tokens : new int[] {1, 3, 5}) {
                        WeightMatrix w = WeightRepackerTest.randomBlocks(type, rows, cols, r, arena);
                        float[] x = gaussian(r, tokens * cols, 1);
                        Tensor out = poisoned(tokens, rows);
                        gpu.matmul(out, gpuTensor(x, tokens, cols), gpu.upload(w));
                        assertDotsClose(w, x, tokens, gpu.download(out), tolerance,
                                "matmul " + type + " " + rows + "x" + cols + " T=" + tokens);
                    }
                }
            }
            WeightMatrix table = WeightRepackerTest.randomBlocks(type, 17, 512, r, arena);
            int[] tokens = {16, 0, 5, 5};
            HostTensor expected = new HostTensor(tokens.length, 512);
            cpu.embed(expected, table, tokens);
            Tensor out = poisoned(tokens.length, 512);
            gpu.embed(out, gpu.upload(table), tokens);
            assertClose(expected.data(), gpu.download(out), 1e-6, "embed " + type);
        }
    }

    @Test
    void addBiasAddSwiglu() {
        Random r = TestRandom.create("CudaParityTest.elementwise");
        for (int rows : AWKWARD) {
            for (int cols : new int[] {1, 17, 769}) {
                float[] x = gaussian(r, rows * cols, 2);
                float[] y = gaussian(r, rows * cols, 2);
                WeightMatrix bias = weight(GgmlType.F32, gaussian(r, cols, 1), 1, cols);

                HostTensor ex = new HostTensor(x.clone(), rows, cols);
                cpu.addBias(ex, bias);
                Tensor gx = gpuTensor(x, rows, cols);
                gpu.addBias(gx, gpu.upload(bias));
                assertClose(ex.data(), gpu.download(gx), 0, "addBias"); // one rounding, same on both

                HostTensor ea = new HostTensor(x.clone(), rows, cols);
                cpu.add(ea, new HostTensor(y.clone(), rows, cols));
                Tensor ga = gpuTensor(x, rows, cols);
                gpu.add(ga, gpuTensor(y, rows, cols));
                assertClose(ea.data(), gpu.download(ga), 0, "add");

                HostTensor es = new HostTensor(x.clone(), rows, cols);
                cpu.swiglu(es, new HostTensor(y.clone(), rows, cols));
                Tensor gs = gpuTensor(x, rows, cols);
                gpu.swiglu(gs, gpuTensor(y, rows, cols));
                // expf vs Math.exp rounded to float: within 2 ulps per element.
                assertClose(es.data(), gpu.download(gs), 1e-6, "swiglu");
            }
        }
    }

    @Test
    void gatherRowsAndArgmax() {
        Random r = TestRandom.create("CudaParityTest.gather");
        float[] x = gaussian(r, 17 * 769, 1);
        int[] rows = {16, 0, 3, 3};
        HostTensor expected = new HostTensor(rows.length, 769);
        cpu.gatherRows(expected, new HostTensor(x, 17, 769), rows);
        Tensor out = poisoned(rows.length, 769);
        Tensor gx = gpuTensor(x, 17, 769);
        gpu.gatherRows(out, gx, rows);
        assertArrayEquals(expected.data(), gpu.download(out));

        int[] argmax = gpu.argmax(gx);
        for (int row = 0; row < 17; row++) {
            int best = 0;
            for (int j = 1; j < 769; j++) {
                if (x[row * 769 + j] > x[row * 769 + best]) {
                    best = j;
                }
            }
            assertEquals(best, argmax[row], "argmax row " + row);
        }
        float[] ties = new float[3 * 111];
        ties[5] = 1;
        ties[7] = 1;
        ties[111 + 50] = Float.NaN;
        ties[111 + 60] = -1;
        ties[2 * 111 + 110] = 2;
        assertArrayEquals(new int[] {5, 0, 110}, gpu.argmax(gpuTensor(ties, 3, 111)), "first index on ties; NaN never wins");

        // Vocabulary-sized rows, fewer than the SMs: each row is split across blocks (argmax.cuh).
        Random longRows = TestRandom.create("CudaParityTest.argmaxLong");
        for (int cols : new int[] {50_001, 128_256}) {
            float[] logits = gaussian(longRows, 3 * cols, 1);
            logits[9_000] = 10;             // row 0: a tie across two slices, the first wins
            logits[cols - 1] = 10;
            for (int j = 0; j < 8192; j++) {  // row 1: a whole slice of NaN never wins
                logits[cols + 16_384 + j] = Float.NaN;
            }
            logits[2 * cols + cols - 1] = 10;  // row 2: the last column
            int[] got = gpu.argmax(gpuTensor(logits, 3, cols));
            for (int row = 0; row < 3; row++) {
                int best = 0;
                for (int j = 1; j < cols; j++) {
                    if (logits[row * cols + j] > logits[row * cols + best] || Float.isNaN(logits[row * cols + best])) {
                        best = j;
                    }
                }
                assertEquals(best, got[row], "argmax of a " + cols + "-column row " + row);
            }
        }
    }

    @Test
    void rope() {
        Random r = TestRandom.create("CudaParityTest.rope");
        for (RopeStyle style : RopeStyle.values()) {
            for (int headDim : new int[] {2, 34, 64, 128}) {
                int heads = 3;
                int tokens = 17;
                float[] invFreq = new float[headDim / 2];
                for (int i = 0; i < invFreq.length; i++) {
                    invFreq[i] = (float) Math.pow(10000, -2.0 * i / headDim);
                }
                int[] positions = new int[tokens];
                for (int t = 0; t < tokens; t++) {
                    positions[t] = r.nextInt(8192);
                }
                float[] x = gaussian(r, tokens * heads * headDim, 1);
                HostTensor expected = new HostTensor(x.clone(), tokens, heads * headDim);
                cpu.rope(expected, heads, headDim, positions, invFreq, style);
                Tensor gx = gpuTensor(x, tokens, heads * headDim);
                gpu.rope(gx, heads, headDim, positions, invFreq, style);
                // Same f32 angle on both sides; sincosf vs Math.sin/cos (double, rounded): ~1 ulp.
                assertClose(expected.data(), gpu.download(gx), 1e-5, "rope " + style + " headDim " + headDim);
            }
        }
    }

    /** A ragged batch: a prefill chunk, a decode token deep in its context, and a mid-sequence chunk. */
    @Test
    void pagedAttentionRaggedBatch() {
        Random r = TestRandom.create("CudaParityTest.attention");
        int[][] shapes = {{6, 2, 64}, {8, 8, 128}, {12, 1, 40}, {4, 2, 256}, {3, 3, 17}}; // heads, kvHeads, headDim
        for (int[] shape : shapes) {
            for (int blockSize : new int[] {16, 5}) {
                checkAttention(r, shape[0], shape[1], shape[2], blockSize, new int[] {0, 111, 40}, new int[] {17, 1, 3});
            }
        }
    }

    /** Few sequences with long windows: the kernel splits each window across blocks and merges. */
    @Test
    void pagedAttentionSplitKvForLongContexts() {
        Random r = TestRandom.create("CudaParityTest.attentionSplit");
        checkAttention(r, 8, 8, 128, 16, new int[] {1500}, new int[] {1});
        checkAttention(r, 32, 8, 128, 16, new int[] {1500, 0}, new int[] {1, 3});
        checkAttention(r, 6, 2, 64, 7, new int[] {4099, 2000, 257}, new int[] {1, 2, 1});
    }

    /**
     * f16 and bf16 pools, the ragged batch and split-KV both: the CPU and GPU caches store the same
     * rounded values (kv_dtype.cuh rounds as HalfRows does), so only f32 summation order differs.
     */
    @Test
    void pagedAttentionHalfPools() {
        Random r = TestRandom.create("CudaParityTest.attentionHalf");
        for (KvDtype dtype : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
            for (int[] shape : new int[][] {{6, 2, 64}, {12, 1, 40}, {4, 2, 256}, {3, 3, 17}}) { // heads, kvHeads, headDim
                checkAttention(r, shape[0], shape[1], shape[2], 5, new int[] {0, 111, 40}, new int[] {17, 1, 3}, dtype);
            }
            checkAttention(r, 32, 8, 128, 16, new int[] {1500, 0}, new int[] {1, 3}, dtype);
            checkAttention(r, 6, 2, 64, 7, new int[] {4099, 2000, 257}, new int[] {1, 2, 1}, dtype);
        }
    }

    /**
     * The write kernel's rounding, bit for bit, against Java's (Float.floatToFloat16, and the bf16
     * rounding of java/core Bf16Matrix.toBf16): ties both ways, subnormals, overflow, infinities,
     * signed zeros and random values; for f16 a NaN only has to stay a NaN (cvt gives the canonical one).
     */
    @Test
    void kvWriteRoundsLikeTheCpu() {
        Random r = TestRandom.create("CudaParityTest.kvWriteRounding");
        int kvHeads = 2;
        int headDim = 37;
        int row = kvHeads * headDim;
        int numBlocks = 4;
        int blockSize = 3;
        int tokens = numBlocks * blockSize;
        float[] k = new float[tokens * row];
        float[] special = {0f, -0f, 1f, -1f, 65504f, 65520f, 65519.996f, 1e-8f, -3e-5f, 6.1e-5f, 5.9604645e-8f,
                2.9802322e-8f, 1e30f, -1e-40f, Float.MIN_VALUE, Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.intBitsToFloat(0x3f808000), Float.intBitsToFloat(0x3f818000),
                Float.intBitsToFloat(0x3f801000), Float.intBitsToFloat(0x3f803000), Float.intBitsToFloat(0x7f7fffff)};
        for (int i = 0; i < k.length; i++) {
            k[i] = i < special.length ? special[i] : (float) (r.nextGaussian() * Math.pow(10, r.nextInt(9) - 4));
        }
        float[] v = gaussian(r, tokens * row, 3);
        v[5] = Float.NaN;
        int[] slots = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            slots[t] = (t * 5) % tokens; // 5 is prime to 12: every slot once, out of order
        }
        for (KvDtype dtype : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
            try (KvCache cache = gpu.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim, dtype)) {
                assertEquals(dtype, cache.dtype());
                gpu.writeKv(cache, 0, gpuTensor(k, tokens, row), gpuTensor(v, tokens, row), slots);
                DeviceKvCache c = (DeviceKvCache) cache;
                short[] keys = downloadShorts(c.keys[0], (long) tokens * row);
                short[] values = downloadShorts(c.values[0], (long) tokens * row);
                for (int t = 0; t < tokens; t++) {
                    for (int i = 0; i < row; i++) {
                        int src = t * row + i;
                        int dst = slots[t] * row + i;
                        assertStored(dtype, k[src], keys[dst], "K token " + t + " value " + i);
                        assertStored(dtype, v[src], values[dst], "V token " + t + " value " + i);
                    }
                }
            }
        }
    }

    private static void assertStored(KvDtype dtype, float value, short stored, String what) {
        if (dtype == KvDtype.F16 && Float.isNaN(value)) {
            assertTrue(Float.isNaN(Float.float16ToFloat(stored)), what + ": NaN stays NaN");
            return;
        }
        short expected = dtype == KvDtype.F16 ? Float.floatToFloat16(value) : bf16(value);
        assertEquals(expected, stored, dtype + " " + what + " of " + value);
    }

    /** java/core Bf16Matrix.toBf16 (package-private there): nearest even, NaN quiet with its payload. */
    private static short bf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    private static short[] downloadShorts(long address, long count) {
        gpu.synchronize();
        MemorySegment host = arena.allocate(2 * count, 2);
        dev.lathe.bindings.LatheNative.memcpyD2h(gpu.stream(), host, address, 2 * count);
        return host.toArray(java.lang.foreign.ValueLayout.JAVA_SHORT);
    }

    /** Copy on write (KvCache.copyBlock) of a 16-bit pool: block 1's bytes land in block 3, every layer, K and V. */
    @Test
    void copyBlockCopiesHalfPools() {
        Random r = TestRandom.create("CudaParityTest.copyBlockHalf");
        int blockSize = 5;
        int row = 3 * 24;
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16, KvDtype.BF16}) {
            try (KvCache cache = gpu.allocateKvCache(2, 4, blockSize, 3, 24, dtype)) {
                int[] slots = {5, 6, 7, 8, 9};
                for (int layer = 0; layer < 2; layer++) {
                    gpu.writeKv(cache, layer, gpuTensor(gaussian(r, blockSize * row, 1), blockSize, row),
                            gpuTensor(gaussian(r, blockSize * row, 1), blockSize, row), slots);
                }
                cache.copyBlock(1, 3);
                DeviceKvCache c = (DeviceKvCache) cache;
                long shortsPerBlock = c.shape.blockBytes() / 2;
                for (int layer = 0; layer < 2; layer++) {
                    for (long pool : new long[] {c.keys[layer], c.values[layer]}) {
                        short[] all = downloadShorts(pool, c.shape.poolBytes() / 2);
                        short[] source = Arrays.copyOfRange(all, (int) shortsPerBlock, (int) (2 * shortsPerBlock));
                        short[] target = Arrays.copyOfRange(all, (int) (3 * shortsPerBlock), (int) (4 * shortsPerBlock));
                        assertArrayEquals(source, target, dtype + " layer " + layer);
                        assertTrue(Arrays.equals(new short[(int) shortsPerBlock],
                                Arrays.copyOfRange(all, (int) (2 * shortsPerBlock), (int) (3 * shortsPerBlock))),
                                dtype + ": block 2 untouched");
                    }
                }
            }
        }
    }

    private static void checkAttention(Random r, int heads, int kvHeads, int headDim, int blockSize, int[] context,
                                       int[] newTokens) {
        checkAttention(r, heads, kvHeads, headDim, blockSize, context, newTokens, KvDtype.F32);
    }

    private static void checkAttention(Random r, int heads, int kvHeads, int headDim, int blockSize, int[] context,
                                       int[] newTokens, KvDtype dtype) {
        int sequences = context.length;
        PagedBatch batch = PagedBatch.of(r, blockSize, context, newTokens);
        int numBlocks = batch.numBlocks();
        int tokens = batch.tokens();
        BatchPlan plan = batch.plan();

        int kvCols = kvHeads * headDim;
        KvCache cpuCache = cpu.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim, dtype);
        KvCache gpuCache = gpu.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim, dtype);
        // Fill every cached position of every sequence (the context and the new tokens).
        for (int s = 0; s < sequences; s++) {
            int total = context[s] + newTokens[s];
            int[] allSlots = new int[total];
            for (int pos = 0; pos < total; pos++) {
                allSlots[pos] = batch.slot(s, pos);
            }
            float[] k = gaussian(r, total * kvCols, 1);
            float[] v = gaussian(r, total * kvCols, 1);
            cpu.writeKv(cpuCache, 0, new HostTensor(k, total, kvCols), new HostTensor(v, total, kvCols), allSlots);
            gpu.writeKv(gpuCache, 0, gpuTensor(k, total, kvCols), gpuTensor(v, total, kvCols), allSlots);
        }
        float[] q = gaussian(r, tokens * heads * headDim, 1);
        float scale = (float) (1 / Math.sqrt(headDim));
        HostTensor expected = new HostTensor(tokens, heads * headDim);
        cpu.attention(expected, new HostTensor(q, tokens, heads * headDim), cpuCache, 0, plan, heads, scale);
        Tensor out = poisoned(tokens, heads * headDim);
        gpu.attention(out, gpuTensor(q, tokens, heads * headDim), gpuCache, 0, plan, heads, scale);
        // Online softmax in f32 vs the CPU's two-pass softmax: rounding differences only (f16/bf16
        // pools too: both caches hold the same rounded values, widened exactly).
        assertClose(expected.data(), gpu.download(out), 1e-5, "attention " + dtype.label() + " heads=" + heads
                + " kvHeads=" + kvHeads + " headDim=" + headDim + " blockSize=" + blockSize);
        gpuCache.close();
    }

    @Test
    void speculativeVerificationMatchesTheReference() {
        Random r = TestRandom.create("CudaParityTest.specVerify");
        int batch = 3;
        int k = 4;
        for (int vocab : new int[] {17, 999}) {
            for (float temperature : new float[] {0f, 0.7f, 1.3f}) {
                for (int[] filters : new int[][] {{0, 100}, {5, 100}, {0, 90}, {7, 80}}) { // topK, topP in %
                    int topK = filters[0];
                    float topP = filters[1] / 100f;
                    float[] logits = gaussian(r, batch * (k + 1) * vocab, 2);
                    float[] probs = new float[batch * k * vocab];
                    int[] drafts = new int[batch * k];
                    long[] seeds = new long[batch];
                    long[] offsets = new long[batch];
                    float[][][] targetRows = new float[batch][k + 1][];
                    float[][][] draftRows = new float[batch][k][];
                    for (int s = 0; s < batch; s++) {
                        seeds[s] = r.nextLong();
                        offsets[s] = r.nextInt(1000);
                        for (int i = 0; i <= k; i++) {
                            targetRows[s][i] = Arrays.copyOfRange(logits, (s * (k + 1) + i) * vocab, (s * (k + 1) + i + 1) * vocab);
                        }
                        for (int i = 0; i < k; i++) {
                            // A draft close to the target (perturbed logits), so drafts are often kept.
                            float[] noisy = targetRows[s][i].clone();
                            for (int j = 0; j < vocab; j++) {
                                noisy[j] += (float) r.nextGaussian() * 0.5f;
                            }
                            float[] q = SpecVerifyReference.distribution(noisy, 1f, 0, 1f);
                            draftRows[s][i] = q;
                            System.arraycopy(q, 0, probs, (s * k + i) * vocab, vocab);
                            drafts[s * k + i] = SpecVerifyReference.sample(q, r.nextFloat());
                        }
                    }
                    int[][] got = gpu.verifySpeculative(gpuTensor(logits, batch * (k + 1), vocab),
                            gpuTensor(probs, batch * k, vocab), drafts, seeds, offsets, k, temperature, topK, topP);
                    for (int s = 0; s < batch; s++) {
                        SpecVerifyReference.Result expected = SpecVerifyReference.verify(targetRows[s], draftRows[s],
                                Arrays.copyOfRange(drafts, s * k, (s + 1) * k), seeds[s], offsets[s], temperature, topK, topP);
                        String what = "vocab " + vocab + " T=" + temperature + " topK=" + topK + " topP=" + topP + " seq " + s;
                        assertEquals(expected.accepted(), got[0][s], what + ": accepted");
                        assertEquals(expected.nextToken(), got[1][s], what + ": next token");
                    }
                }
            }
        }
    }

    /**
     * The tensor-core GEMM (8+ tokens, kernels/quant/mma_gemm.cuh) for every weight layout it reads,
     * at row counts around its 64- and 128-row tiles and token counts around its 16/32-token (narrow
     * kernel) and 64/128-token (wide kernel, from 33) tiles.
     */
    @Test
    void tensorCoreMatmul() {
        Random r = TestRandom.create("CudaParityTest.tensorCores");
        // x and the weights are rounded to f16 (2^-11 relative each) before an f32-accumulated
        // product: the row error averages to ~5e-4 relative; an indexing mistake gives O(1).
        double tolerance = 2e-3;
        int[] tokenCounts = {8, 16, 17, 32, 33, 64, 65, 100, 128, 257};
        for (GgmlType type : new GgmlType[] {GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K,
                GgmlType.Q5_K, GgmlType.Q6_K}) {
            boolean kQuant = type == GgmlType.Q4_K || type == GgmlType.Q5_K || type == GgmlType.Q6_K;
            for (int rows : new int[] {1, 63, 65, 200}) {
                // 96: not a whole 64-column k-step, so the GEMV runs (it must agree all the same).
                for (int cols : kQuant ? new int[] {256, 1024} : new int[] {64, 96, 192, 1024}) {
                    WeightMatrix w = kQuant ? WeightRepackerTest.randomBlocks(type, rows, cols, r, arena)
                            : weight(type, gaussian(r, rows * cols, 0.05), rows, cols);
                    WeightMatrix dw = gpu.upload(w);
                    for (int tokens : tokenCounts) {
                        float[] x = gaussian(r, tokens * cols, 1);
                        HostTensor expected = new HostTensor(tokens, rows);
                        cpu.matmul(expected, new HostTensor(x, tokens, cols), w);
                        Tensor out = poisoned(tokens, rows);
                        gpu.matmul(out, gpuTensor(x, tokens, cols), dw);
                        assertClose(expected.data(), gpu.download(out), tolerance,
                                "tensor-core matmul " + type + " " + rows + "x" + cols + " T=" + tokens);
                    }
                }
            }
        }
        for (int rows : new int[] {1, 65, 200}) {
            for (int cols : new int[] {128, 1024}) {
                float[] values = gaussian(r, rows * cols, 0.05);
                Int4Weights int4 = Int4Weights.quantize(values, rows, cols, 64);
                Nf4Weights nf4 = Nf4Weights.quantize(values, rows, cols);
                for (int tokens : tokenCounts) {
                    float[] x = gaussian(r, tokens * cols, 1);
                    Tensor out = poisoned(tokens, rows);
                    gpu.matmul(out, gpuTensor(x, tokens, cols), gpu.upload(int4));
                    assertClose(reference(int4::value, rows, cols, x, tokens), gpu.download(out), tolerance,
                            "tensor-core int4 " + rows + "x" + cols + " T=" + tokens);
                    out = poisoned(tokens, rows);
                    gpu.matmul(out, gpuTensor(x, tokens, cols), gpu.upload(nf4));
                    assertClose(reference(nf4::value, rows, cols, x, tokens), gpu.download(out), tolerance,
                            "tensor-core nf4 " + rows + "x" + cols + " T=" + tokens);
                }
            }
        }
    }

    /** Model-file weights in Lathe's formats run on their kernels through the ordinary upload and matmul. */
    @Test
    void latheFormatsRunOnTheirKernels() {
        Random r = TestRandom.create("CudaParityTest.latheFormats");
        LatheFormat[] formats = {LatheFormat.intGroup(4, 64, true), LatheFormat.intGroup(3, 128, false),
                LatheFormat.nf4(64), LatheFormat.int8Channel(), LatheFormat.nf4(128), LatheFormat.sparse24F16(),
                LatheFormat.sparse24Int4(64, true)};
        for (LatheFormat format : formats) {
            for (int rows : new int[] {1, 3, 70}) {
                for (int cols : new int[] {128, 1024}) {
                    WeightMatrix w = WeightRepackerTest.latheEncoded(format, rows, cols, r, arena);
                    WeightMatrix dw = gpu.upload(w);
                    for (int tokens : new int[] {1, 3, 17}) {
                        float[] x = gaussian(r, tokens * cols, 1);
                        HostTensor expected = new HostTensor(tokens, rows);
                        cpu.matmul(expected, new HostTensor(x, tokens, cols), w);
                        Tensor out = poisoned(tokens, rows);
                        gpu.matmul(out, gpuTensor(x, tokens, cols), dw);
                        // 4-bit and 2:4 layouts keep the values (f32 sums: 2e-5); INT8 (f16 row
                        // scale), NF4 in blocks of 128 and 2:4 INT (F16) round weights to f16; 17
                        // tokens use f16 tensor cores, 2:4 too (mma.sp, x rounded to f16).
                        KernelLayout layout = WeightRepacker.layoutFor(w);
                        boolean exact = layout == KernelLayout.INT4_GROUP || layout == KernelLayout.NF4
                                || layout == KernelLayout.SPARSE24;
                        double tolerance = tokens >= 8 ? 2e-3 : exact ? 2e-5 : 1e-3;
                        assertClose(expected.data(), gpu.download(out), tolerance,
                                "matmul " + format + " " + rows + "x" + cols + " T=" + tokens);
                    }
                }
            }
            WeightMatrix table = WeightRepackerTest.latheEncoded(format, 17, 128, r, arena);
            int[] tokens = {16, 0, 5};
            HostTensor expected = new HostTensor(tokens.length, 128);
            cpu.embed(expected, table, tokens);
            Tensor out = poisoned(tokens.length, 128);
            gpu.embed(out, gpu.upload(table), tokens);
            assertClose(expected.data(), gpu.download(out), 1e-3, "embed " + format);
        }
    }

    /**
     * Each {@code actual[t, r]} against the dot of W's row r (its reference decoding) with x's row
     * t in double, the error measured against {@code sum_i |w_i x_i|}: a dot of random blocks can
     * cancel to near 0 (one row of one token did, relative error 7e-5 against a 2e-5 bound),
     * while its f32 rounding error scales with the terms' magnitudes, not with the result.
     */
    static void assertDotsClose(WeightMatrix w, float[] x, int tokens, float[] actual, double tolerance, String what) {
        int rows = w.rows();
        int cols = w.cols();
        assertEquals(tokens * rows, actual.length, what + ": length");
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            w.dequantizeRow(r, row, 0);
            for (int t = 0; t < tokens; t++) {
                double dot = 0;
                double magnitude = 0;
                for (int i = 0; i < cols; i++) {
                    dot += (double) row[i] * x[t * cols + i];
                    magnitude += Math.abs((double) row[i] * x[t * cols + i]);
                }
                double error = Math.abs(actual[t * rows + r] - dot);
                assertTrue(error <= tolerance * magnitude + 1e-30,
                        what + " [" + t + ", " + r + "]: " + actual[t * rows + r] + " vs " + dot + ", error " + error
                                + " > " + tolerance + " x " + magnitude);
            }
        }
    }

    interface WeightValue {
        float value(int row, int col);
    }

    /** out [tokens, rows] = x . W^T in double, W given element by element. */
    static float[] reference(WeightValue w, int rows, int cols, float[] x, int tokens) {
        float[] out = new float[tokens * rows];
        for (int t = 0; t < tokens; t++) {
            for (int row = 0; row < rows; row++) {
                double sum = 0;
                for (int i = 0; i < cols; i++) {
                    sum += (double) w.value(row, i) * x[t * cols + i];
                }
                out[t * rows + row] = (float) sum;
            }
        }
        return out;
    }

    @Test
    void int4GroupWiseMatmul() {
        Random r = TestRandom.create("CudaParityTest.int4");
        for (int group : new int[] {32, 64, 128}) {
            for (int rows : new int[] {1, 3, 17, 769}) {
                for (int cols : new int[] {128, 384, 4096}) {
                    if (cols % group != 0) {
                        continue;
                    }
                    Int4Weights w = Int4Weights.quantize(gaussian(r, rows * cols, 0.05), rows, cols, group);
                    CudaBackend.DeviceInt4Weight dw = gpu.upload(w);
                    for (int tokens : new int[] {1, 3, 5}) {
                        float[] x = gaussian(r, tokens * cols, 1);
                        float[] expected = reference(w::value, rows, cols, x, tokens);
                        Tensor out = poisoned(tokens, rows);
                        gpu.matmul(out, gpuTensor(x, tokens, cols), dw);
                        // f32 accumulation against a double reference of the same weights.
                        assertClose(expected, gpu.download(out), 2e-5,
                                "int4 group " + group + " " + rows + "x" + cols + " T=" + tokens);
                    }
                }
            }
        }
    }

    @Test
    void nf4Matmul() {
        Random r = TestRandom.create("CudaParityTest.nf4");
        for (int rows : new int[] {1, 3, 17, 769}) {
            for (int cols : new int[] {64, 192, 4096}) {
                Nf4Weights w = Nf4Weights.quantize(gaussian(r, rows * cols, 0.05), rows, cols);
                CudaBackend.DeviceNf4Weight dw = gpu.upload(w);
                for (int tokens : new int[] {1, 3, 5}) {
                    float[] x = gaussian(r, tokens * cols, 1);
                    float[] expected = reference(w::value, rows, cols, x, tokens);
                    Tensor out = poisoned(tokens, rows);
                    gpu.matmul(out, gpuTensor(x, tokens, cols), dw);
                    // f32 accumulation against a double reference of the same weights.
                    assertClose(expected, gpu.download(out), 2e-5, "nf4 " + rows + "x" + cols + " T=" + tokens);
                }
            }
        }
    }

    @Test
    void sparse24Matmul() {
        Random r = TestRandom.create("CudaParityTest.sparse24");
        for (int rows : new int[] {1, 3, 17, 769}) {
            for (int cols : new int[] {32, 96, 4096}) {
                Sparse24Weights w = Sparse24Weights.compress(gaussian(r, rows * cols, 0.05), rows, cols);
                CudaBackend.DeviceSparse24Weight dw = gpu.upload(w);
                for (int tokens : new int[] {1, 3, 5}) {
                    float[] x = gaussian(r, tokens * cols, 1);
                    float[] expected = reference(w::value, rows, cols, x, tokens);
                    Tensor out = poisoned(tokens, rows);
                    gpu.matmul(out, gpuTensor(x, tokens, cols), dw);
                    // f32 accumulation against a double reference of the same (pruned, f16) weights.
                    assertClose(expected, gpu.download(out), 2e-5, "2:4 " + rows + "x" + cols + " T=" + tokens);
                }
            }
        }
    }

    /**
     * The 2:4 GEMM on the sparse tensor cores (mma.sp, 8+ tokens, cols a multiple of 64) against a
     * double reference of the same pruned f16 weights; awkward row counts leave a partial 16-row
     * tile and a partial 64-row block, token counts partial 16/32/64-token tiles; 96 columns falls
     * back to the GEMV. Tolerance: x is rounded to f16 (2^-11 relative) before f32 accumulation,
     * as in the dense tensor-core GEMM's 2e-3.
     */
    @Test
    void sparse24TensorCores() {
        Random r = TestRandom.create("CudaParityTest.sparse24mma");
        for (int rows : new int[] {1, 17, 111, 769}) {
            for (int cols : new int[] {64, 96, 4096}) {
                Sparse24Weights w = Sparse24Weights.compress(gaussian(r, rows * cols, 0.05), rows, cols);
                CudaBackend.DeviceSparse24Weight dw = gpu.upload(w);
                for (int tokens : new int[] {8, 17, 64, 100}) {
                    float[] x = gaussian(r, tokens * cols, 1);
                    float[] expected = reference(w::value, rows, cols, x, tokens);
                    Tensor out = poisoned(tokens, rows);
                    gpu.matmul(out, gpuTensor(x, tokens, cols), dw);
                    assertClose(expected, gpu.download(out), cols % 64 == 0 ? 2e-3 : 2e-5,
                            "2:4 mma.sp " + rows + "x" + cols + " T=" + tokens);
                }
            }
        }
    }

    /** The benchmark's cuBLAS baseline computes what our F16 GEMV computes (x exactly representable in f16). */
    @Test
    void cublasBaselineAgreesWithTheF16Gemv() {
        Random r = TestRandom.create("CudaParityTest.cublas");
        int rows = 769;
        int cols = 512;
        int tokens = 3;
        float[] w = gaussian(r, rows * cols, 0.05);
        float[] x = gaussian(r, tokens * cols, 1);
        for (int i = 0; i < x.length; i++) {
            x[i] = Float.float16ToFloat(Float.floatToFloat16(x[i]));
        }
        DeviceWeight weight = (DeviceWeight) gpu.upload(weight(GgmlType.F16, w, rows, cols));
        DeviceWeight xHalf = (DeviceWeight) gpu.upload(weight(GgmlType.F16, x, tokens, cols));
        Tensor ours = poisoned(tokens, rows);
        gpu.matmul(ours, gpuTensor(x, tokens, cols), weight);
        DeviceTensor theirs = (DeviceTensor) poisoned(tokens, rows);
        try {
            dev.lathe.bindings.LatheNative.cublasGemmF16(gpu.stream(), weight.values, xHalf.values, theirs.address, rows,
                    cols, tokens);
        } catch (dev.lathe.bindings.LatheException e) {
            org.junit.jupiter.api.Assumptions.abort("cuBLAS not available: " + e.getMessage());
        }
        // Same f16 products; FP32 accumulation in different orders.
        assertClose(gpu.download(ours), gpu.download(theirs), 1e-5, "cuBLAS vs GEMV");
    }

    @Test
    void badInputIsAnExceptionNotAFault() {
        KvCache cache = gpu.allocateKvCache(1, 2, 4, 1, 8);
        Tensor k = gpu.allocate(1, 8);
        // Slots 8-11 are the sink block's (DeviceKvCache: decode graphs' padding writes there), so
        // 12 is the first slot outside the device pools.
        assertThrows(IllegalArgumentException.class, () -> gpu.writeKv(cache, 0, k, k, new int[] {12}));
        assertThrows(IllegalArgumentException.class, () -> gpu.writeKv(cache, 0, k, k, new int[] {-1}));
        assertThrows(IllegalArgumentException.class, () -> gpu.writeKv(cache, 1, k, k, new int[] {0}));
        // Block 2 is the sink, so 3 is the first block outside the device pools.
        BatchPlan outside = new BatchPlan(new int[] {1}, new int[] {0}, new int[] {0, 1}, new int[] {0},
                new int[] {0, 1}, new int[] {3}, new int[] {0}, new int[0], 4);
        assertThrows(IllegalArgumentException.class,
                () -> gpu.attention(gpu.allocate(1, 8), gpu.allocate(1, 8), cache, 0, outside, 1, 1f));
        assertThrows(IllegalArgumentException.class, () -> gpu.matmul(gpu.allocate(1, 3), gpu.allocate(1, 5),
                gpu.upload(weight(GgmlType.F32, new float[12], 3, 4))));
        cache.close();
        // A dtype the kernels do not store (int8 once java/core has it) is refused before allocating.
        for (KvDtype dtype : KvDtype.values()) {
            if (dtype != KvDtype.F32 && dtype != KvDtype.F16 && dtype != KvDtype.BF16) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> gpu.allocateKvCache(1, 2, 4, 1, 8, dtype));
                assertTrue(e.getMessage().contains(dtype.label()), e.getMessage());
            }
        }
    }
}
