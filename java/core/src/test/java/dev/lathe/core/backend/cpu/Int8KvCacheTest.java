package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.tensor.Int8Rows;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The CPU backend's int8 KV pools: the Vector API kernels against scalar loops, what is stored
 * (round half to even of x / (max|x| / 127), one scale per token and kv-head), and paged GQA
 * attention over the pools against (a) f32 attention over the dequantized values, to rounding, and
 * (b) f32 attention over the original values, within what quantizing K and V can cause.
 */
class Int8KvCacheTest {
    private static final double U = 0x1p-24; // f32 unit roundoff
    private final CpuBackend backend = new CpuBackend(2);

    @Test
    void dotAndAxpyMatchScalarLoops() {
        Random r = TestRandom.create("int8-rows");
        for (int n : new int[] {1, 3, 7, 8, 16, 17, 40, 64, 111, 128, 769}) {
            for (int trial = 0; trial < 5; trial++) {
                int xOff = r.nextInt(5);
                int qOff = r.nextInt(40);
                float[] x = gaussian(r, xOff + n);
                byte[] q = new byte[qOff + n];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (byte) (r.nextInt(255) - 127);
                }
                double exact = 0;
                double magnitude = 0;
                for (int i = 0; i < n; i++) {
                    exact += (double) x[xOff + i] * q[qOff + i];
                    magnitude += Math.abs((double) x[xOff + i] * q[qOff + i]);
                }
                // Any order of n f32 products and sums: |error| <= (n + 1) u sum|x_i q_i| (q_i and its
                // product with x_i are exact in f32 up to one rounding; then n - 1 additions).
                float dot = Int8Rows.dot(x, xOff, q, qOff, n);
                assertEquals(exact, dot, (n + 1) * U * magnitude, "dot n=" + n);

                float alpha = (float) r.nextGaussian();
                float[] y = gaussian(r, 3 + n);
                float[] expected = y.clone();
                for (int i = 0; i < n; i++) {
                    expected[3 + i] += alpha * q[qOff + i];
                }
                Int8Rows.axpy(alpha, q, qOff, y, 3, n);
                for (int i = 0; i < y.length; i++) {
                    // fma rounds once where the loop rounds twice: within one ulp of the larger term.
                    double bound = 2 * U * (Math.abs(expected[i]) + Math.abs(alpha * (i >= 3 && i < 3 + n ? q[qOff + i - 3] : 0)));
                    assertEquals(expected[i], y[i], bound, "axpy n=" + n + " i=" + i);
                }
            }
        }
    }

    @Test
    void quantizeRoundsHalfToEvenAgainstTheAbsmaxScale() {
        Random r = TestRandom.create("int8-quantize");
        // absmax 127: scale exactly 1, so x / scale = x and the ties are visible.
        float[] ties = {2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, 127f, -126.5f};
        byte[] q = new byte[ties.length];
        assertEquals(1f, Int8Rows.quantize(ties, 0, q, 0, ties.length), 0f);
        assertArrayEquals(new byte[] {2, 4, -2, 0, 0, 2, 127, -126}, q);

        byte[] zeros = {9, 9, 9};
        assertEquals(0f, Int8Rows.quantize(new float[3], 0, zeros, 0, 3), 0f);
        assertArrayEquals(new byte[3], zeros);

        for (int n : new int[] {1, 3, 17, 64, 111}) {
            float[] x = gaussian(r, n + 2);
            x[1] *= 1e-3f;
            byte[] stored = new byte[n + 4];
            Arrays.fill(stored, (byte) 99); // poisoned: every byte of the vector must be written
            float scale = Int8Rows.quantize(x, 2, stored, 4, n);
            float absmax = 0;
            for (int i = 0; i < n; i++) {
                absmax = Math.max(absmax, Math.abs(x[2 + i]));
            }
            assertEquals(absmax / 127f, scale, 0f, "scale n=" + n);
            int top = 0;
            for (int i = 0; i < n; i++) {
                int value = stored[4 + i];
                assertEquals(Math.max(-127, Math.min(127, (int) Math.rint(x[2 + i] / scale))), value, "n=" + n + " i=" + i);
                // Round to nearest: within half a step (plus the f32 division's rounding).
                assertTrue(Math.abs(x[2 + i] - value * scale) <= scale * (0.5 + 1e-5), "n=" + n + " x=" + x[2 + i]);
                top = Math.max(top, Math.abs(value));
            }
            assertEquals(127, top, "the absmax value is stored as +-127");
        }
    }

    @Test
    void attentionOverInt8PoolsMatchesDequantizedF32AndStaysWithinTheQuantizationBound() {
        Random r = TestRandom.create("int8-kv-attention");
        int[][] headShapes = {{6, 2}, {4, 4}, {7, 1}}; // {query heads, kv heads}: GQA, MHA, MQA
        for (int headDim : new int[] {17, 40, 64, 111, 128}) {
            for (int blockSize : new int[] {1, 5, 16}) {
                int[] shape = headShapes[r.nextInt(headShapes.length)];
                compare(r, headDim, blockSize, shape[0], shape[1]);
            }
        }
    }

    /**
     * Three sequences of 23, 1 and 41 tokens prefilled in one ragged batch (so every causal length
     * 1..41 occurs), blocks shuffled through the pool.
     */
    private void compare(Random r, int headDim, int blockSize, int heads, int kvHeads) {
        String where = "headDim " + headDim + " blockSize " + blockSize + " heads " + heads + "/" + kvHeads;
        RaggedPrefill batch = RaggedPrefill.of(r, blockSize);
        int tokens = batch.tokens();
        int numBlocks = batch.numBlocks();
        int[] slots = batch.slots();
        BatchPlan plan = batch.plan();
        int rowFloats = kvHeads * headDim;
        HostTensor k = gaussian(r, tokens, rowFloats);
        HostTensor v = gaussian(r, tokens, rowFloats);
        // Heads of different range: a per-vector scale must not be shared across heads.
        for (int i = 0; i < tokens * rowFloats; i++) {
            float headRange = 1 + 3 * ((i % rowFloats) / headDim);
            k.data()[i] *= headRange;
            v.data()[i] *= headRange;
        }
        HostTensor q = gaussian(r, tokens, heads * headDim);
        float scale = (float) (1 / Math.sqrt(headDim));
        HostTensor exact = poisoned(tokens, heads * headDim);
        HostTensor dequantized = poisoned(tokens, heads * headDim);
        HostTensor int8 = poisoned(tokens, heads * headDim);
        HostTensor kd = new HostTensor(tokens, rowFloats);
        HostTensor vd = new HostTensor(tokens, rowFloats);
        float[][] kScale = new float[tokens][kvHeads];
        float[][] vScale = new float[tokens][kvHeads];
        try (KvCache f32 = backend.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim);
             KvCache deq = backend.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim);
             KvCache quant = backend.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim, KvDtype.INT8)) {
            assertEquals(KvDtype.INT8, quant.dtype());
            assertEquals(2L * numBlocks * blockSize * kvHeads * (headDim + 4), quant.byteSize(), "int8 values + f32 scales");
            backend.writeKv(f32, 0, k, v, slots);
            backend.writeKv(quant, 0, k, v, slots);
            CpuKvCache c = (CpuKvCache) quant;
            for (int t = 0; t < tokens; t++) {
                for (int h = 0; h < kvHeads; h++) {
                    kScale[t][h] = c.keyScales[0][slots[t] * kvHeads + h];
                    vScale[t][h] = c.valueScales[0][slots[t] * kvHeads + h];
                    for (int d = 0; d < headDim; d++) {
                        int at = slots[t] * rowFloats + h * headDim + d;
                        kd.data()[t * rowFloats + h * headDim + d] = c.keyBytes[0][at] * kScale[t][h];
                        vd.data()[t * rowFloats + h * headDim + d] = c.valueBytes[0][at] * vScale[t][h];
                    }
                }
            }
            backend.writeKv(deq, 0, kd, vd, slots);
            backend.attention(exact, q, f32, 0, plan, heads, scale);
            backend.attention(dequantized, q, deq, 0, plan, heads, scale);
            backend.attention(int8, q, quant, 0, plan, heads, scale);
        }
        int group = heads / kvHeads;
        boolean anyDifference = false;
        for (int t = 0; t < tokens; t++) {
            int first = batch.sequenceStart(t);
            for (int h = 0; h < heads; h++) {
                int kvHead = h / group;
                // eps: how far a score can move by quantizing K, max over the keys: each stored key
                // value is within half a step (scale_k / 2) of the original.
                // rounding: how far it can move between scale_k * sum(q k8) and sum(q (k8 scale_k)):
                // (headDim + 2) f32 roundings of sum|q_i k_i|.
                double eps = 0;
                double rounding = 0;
                for (int j = first; j <= t; j++) {
                    double absQ = 0;
                    double absQk = 0;
                    for (int d = 0; d < headDim; d++) {
                        double qd = q.data()[q.offset(t) + h * headDim + d];
                        absQ += Math.abs(qd);
                        absQk += Math.abs(qd * kd.data()[kd.offset(j) + kvHead * headDim + d]);
                    }
                    eps = Math.max(eps, scale * absQ * kScale[j][kvHead] / 2 * (1 + 1e-5));
                    rounding = Math.max(rounding, scale * (headDim + 2) * U * absQk);
                }
                for (int d = 0; d < headDim; d++) {
                    double maxV = 0;
                    double maxStep = 0;
                    for (int j = first; j <= t; j++) {
                        maxV = Math.max(maxV, Math.abs(v.data()[v.offset(j) + kvHead * headDim + d]));
                        maxStep = Math.max(maxStep, vScale[j][kvHead]);
                    }
                    int at = exact.offset(t) + h * headDim + d;
                    // (a) Same values, different association: scores within `rounding`, so weights within
                    // e^(+-2 rounding); plus f32 slack on the weighted sum (1e-5 relative).
                    double toDequantized = (Math.expm1(2 * rounding) + 1e-5) * (maxV + maxStep);
                    double e1 = Math.abs(dequantized.data()[at] - int8.data()[at]);
                    if (!(e1 <= toDequantized)) {
                        fail(where + " token " + t + " head " + h + " dim " + d + ": |dequantized f32 - int8| = " + e1
                                + " > " + toDequantized);
                    }
                    // (b) Weights within e^(+-2 eps) of f32's, each value within half its step:
                    // |error| <= (e^(2 eps) - 1) max|v| + e^(2 eps) max step / 2, plus the slack above.
                    double grow = Math.exp(2 * eps);
                    double bound = (grow - 1) * maxV + grow * maxStep / 2 * (1 + 1e-5) + toDequantized + 1e-5 * maxV;
                    double e2 = Math.abs(exact.data()[at] - int8.data()[at]);
                    if (!(e2 <= bound)) {
                        fail(where + " token " + t + " head " + h + " dim " + d + ": |f32 - int8| = " + e2 + " > bound " + bound);
                    }
                    anyDifference |= e2 > 0;
                }
            }
        }
        assertTrue(anyDifference, where + ": outputs identical to f32; the int8 pool was not used");
    }

    @Test
    void copyBlockCopiesValuesAndScales() {
        Random r = TestRandom.create("int8-kv-copy");
        try (KvCache cache = backend.allocateKvCache(2, 3, 5, 2, 17, KvDtype.INT8)) {
            CpuKvCache c = (CpuKvCache) cache;
            int blockValues = 5 * 2 * 17;
            int blockVectors = 5 * 2;
            for (int layer = 0; layer < 2; layer++) {
                r.nextBytes(c.keyBytes[layer]);
                r.nextBytes(c.valueBytes[layer]);
                for (int i = 0; i < c.keyScales[layer].length; i++) {
                    c.keyScales[layer][i] = r.nextFloat();
                    c.valueScales[layer][i] = r.nextFloat();
                }
            }
            byte[] untouched = c.keyBytes[1].clone();
            cache.copyBlock(0, 2);
            for (int layer = 0; layer < 2; layer++) {
                for (int i = 0; i < blockValues; i++) {
                    assertEquals(c.keyBytes[layer][i], c.keyBytes[layer][2 * blockValues + i]);
                    assertEquals(c.valueBytes[layer][i], c.valueBytes[layer][2 * blockValues + i]);
                }
                for (int i = 0; i < blockVectors; i++) {
                    assertEquals(c.keyScales[layer][i], c.keyScales[layer][2 * blockVectors + i]);
                    assertEquals(c.valueScales[layer][i], c.valueScales[layer][2 * blockVectors + i]);
                }
            }
            // Block 1 is not touched.
            assertArrayEquals(Arrays.copyOfRange(untouched, blockValues, 2 * blockValues),
                    Arrays.copyOfRange(c.keyBytes[1], blockValues, 2 * blockValues));
        }
    }

    private static HostTensor poisoned(int rows, int cols) {
        HostTensor t = new HostTensor(rows, cols);
        Arrays.fill(t.data(), Float.NaN);
        return t;
    }

    private static float[] gaussian(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    private static HostTensor gaussian(Random r, int rows, int cols) {
        HostTensor t = new HostTensor(rows, cols);
        for (int i = 0; i < rows * cols; i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }
}
