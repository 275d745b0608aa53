package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.tensor.HalfRows;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The CPU backend's f16 and bf16 KV pools: what is stored is the f32 value rounded to nearest,
 * and paged GQA attention over them stays within the error that rounding K and V can cause of the
 * f32 pool's result.
 */
class HalfKvCacheTest {
    private final CpuBackend backend = new CpuBackend(2);

    /** Unit roundoff of the stored type: f16 keeps 11 significant bits, bf16 8 (round to nearest: half an ulp). */
    private static double unitRoundoff(KvDtype dtype) {
        return dtype == KvDtype.F16 ? 0x1p-11 : 0x1p-8;
    }

    @Test
    void attentionOverHalfPoolsStaysWithinTheRoundingBoundOfTheF32Pool() {
        Random r = TestRandom.create("half-kv-attention");
        for (KvDtype dtype : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
            for (int headDim : new int[] {17, 40, 64}) {
                for (int blockSize : new int[] {5, 16}) {
                    compare(r, dtype, headDim, blockSize);
                }
            }
        }
    }

    /**
     * Three sequences of 23, 1 and 41 tokens prefilled in one ragged batch (so every causal length
     * 1..41 occurs), blocks shuffled through the pool, 6 query heads over 2 KV heads.
     */
    private void compare(Random r, KvDtype dtype, int headDim, int blockSize) {
        int heads = 6;
        int kvHeads = 2;
        RaggedPrefill batch = RaggedPrefill.of(r, blockSize);
        int tokens = batch.tokens();
        int numBlocks = batch.numBlocks();
        int[] slots = batch.slots();
        BatchPlan plan = batch.plan();
        int rowFloats = kvHeads * headDim;
        HostTensor k = gaussian(r, tokens, rowFloats);
        HostTensor v = gaussian(r, tokens, rowFloats);
        HostTensor q = gaussian(r, tokens, heads * headDim);
        float scale = (float) (1 / Math.sqrt(headDim));
        HostTensor exact = new HostTensor(tokens, heads * headDim);
        HostTensor rounded = new HostTensor(tokens, heads * headDim);
        try (KvCache f32 = backend.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim);
             KvCache half = backend.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim, dtype)) {
            assertEquals(dtype, half.dtype());
            assertEquals(f32.byteSize() / 2, half.byteSize());
            backend.writeKv(f32, 0, k, v, slots);
            backend.writeKv(half, 0, k, v, slots);
            storedValuesAreTheNearestHalves((CpuKvCache) half, k, v, slots, dtype);
            backend.attention(exact, q, f32, 0, plan, heads, scale);
            backend.attention(rounded, q, half, 0, plan, heads, scale);
        }
        // Bound: each stored value is x(1 + d), |d| <= u. So each score moves by at most
        // eps = scale * u * sum_i |q_i k_i| (max over the keys), each softmax weight by a factor within
        // e^(+-2 eps), and the output element d by at most
        // (e^(2 eps) - 1) * max_j |v_jd| (weights) + u * e^(2 eps) * max_j |v_jd| (rounded values),
        // plus f32 arithmetic slack (1e-5 relative, and 2^-24 absolute for f16 subnormals).
        double u = unitRoundoff(dtype);
        int group = heads / kvHeads;
        boolean anyDifference = false;
        for (int t = 0; t < tokens; t++) {
            int first = batch.sequenceStart(t);
            for (int h = 0; h < heads; h++) {
                int kvHead = h / group;
                double eps = 0;
                for (int j = first; j <= t; j++) {
                    double abs = 0;
                    for (int d = 0; d < headDim; d++) {
                        abs += Math.abs((double) q.data()[q.offset(t) + h * headDim + d] * k.data()[k.offset(j) + kvHead * headDim + d]);
                    }
                    eps = Math.max(eps, scale * u * abs);
                }
                for (int d = 0; d < headDim; d++) {
                    double maxV = 0;
                    for (int j = first; j <= t; j++) {
                        maxV = Math.max(maxV, Math.abs(v.data()[v.offset(j) + kvHead * headDim + d]));
                    }
                    double grow = Math.exp(2 * eps);
                    double bound = (grow - 1 + u * grow) * maxV + 1e-5 * maxV + 0x1p-24;
                    int at = exact.offset(t) + h * headDim + d;
                    double error = Math.abs(exact.data()[at] - rounded.data()[at]);
                    if (!(error <= bound)) {
                        fail(dtype + " headDim " + headDim + " blockSize " + blockSize + " token " + t + " head " + h
                                + " dim " + d + ": |f32 - " + dtype + "| = " + error + " > bound " + bound);
                    }
                    anyDifference |= error > 0;
                }
            }
        }
        // The half path must actually have rounded something (a test that compares f32 with f32 proves nothing).
        assertTrue(anyDifference, dtype + ": outputs identical to f32; the half pool was not used");
    }

    private static void storedValuesAreTheNearestHalves(CpuKvCache cache, HostTensor k, HostTensor v, int[] slots, KvDtype dtype) {
        boolean bf16 = dtype == KvDtype.BF16;
        int rowFloats = cache.kvHeads() * cache.headDim();
        for (int t = 0; t < slots.length; t++) {
            for (int i = 0; i < rowFloats; i++) {
                float key = k.data()[k.offset(t) + i];
                float value = v.data()[v.offset(t) + i];
                short storedKey = cache.keyHalves[0][slots[t] * rowFloats + i];
                short storedValue = cache.valueHalves[0][slots[t] * rowFloats + i];
                if (!bf16) {
                    assertEquals(Float.floatToFloat16(key), storedKey);
                    assertEquals(Float.floatToFloat16(value), storedValue);
                }
                // Round to nearest: within half an ulp, i.e. u relative (or 2^-25 absolute for f16 subnormals).
                double u = unitRoundoff(dtype);
                assertTrue(Math.abs(HalfRows.widen(storedKey, bf16) - key) <= u * Math.abs(key) + 0x1p-25, "key " + key);
                assertTrue(Math.abs(HalfRows.widen(storedValue, bf16) - value) <= u * Math.abs(value) + 0x1p-25, "value " + value);
            }
        }
    }

    @Test
    void bf16RoundsToNearestEvenOnTheDroppedBits() {
        try (KvCache cache = backend.allocateKvCache(1, 1, 1, 1, 4, KvDtype.BF16)) {
            // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even is 1. 1 + 3*2^-8 ties to 1 + 2^-6 (even).
            // 1 + 2^-8 + 2^-20 is above the tie: 1 + 2^-7.
            float[] in = {1f + 0x1p-8f, 1f + 3 * 0x1p-8f, 1f + 0x1p-8f + 0x1p-20f, -2.5f};
            float[] expected = {1f, 1f + 0x1p-6f, 1f + 0x1p-7f, -2.5f};
            HostTensor k = new HostTensor(1, 4);
            System.arraycopy(in, 0, k.data(), 0, 4);
            backend.writeKv(cache, 0, k, k, new int[] {0});
            CpuKvCache c = (CpuKvCache) cache;
            for (int i = 0; i < 4; i++) {
                assertEquals(expected[i], HalfRows.widen(c.keyHalves[0][i], true), 0f, "value " + in[i]);
            }
        }
    }

    @Test
    void copyBlockCopiesHalfPools() {
        Random r = TestRandom.create("half-kv-copy");
        for (KvDtype dtype : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
            try (KvCache cache = backend.allocateKvCache(2, 3, 5, 2, 17, dtype)) {
                CpuKvCache c = (CpuKvCache) cache;
                int blockValues = 5 * 2 * 17;
                for (int layer = 0; layer < 2; layer++) {
                    for (int i = 0; i < c.keyHalves[layer].length; i++) {
                        c.keyHalves[layer][i] = (short) r.nextInt();
                        c.valueHalves[layer][i] = (short) r.nextInt();
                    }
                }
                cache.copyBlock(0, 2);
                for (int layer = 0; layer < 2; layer++) {
                    for (int i = 0; i < blockValues; i++) {
                        assertEquals(c.keyHalves[layer][i], c.keyHalves[layer][2 * blockValues + i]);
                        assertEquals(c.valueHalves[layer][i], c.valueHalves[layer][2 * blockValues + i]);
                    }
                }
            }
        }
    }

    private static HostTensor gaussian(Random r, int rows, int cols) {
        HostTensor t = new HostTensor(rows, cols);
        for (int i = 0; i < rows * cols; i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }
}
