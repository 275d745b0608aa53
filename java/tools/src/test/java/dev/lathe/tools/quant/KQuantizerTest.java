package dev.lathe.tools.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.TestRandom;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Q4_K, Q5_K and Q6_K against an independent transcription of ggml's published reference steps
 * (written here from the algorithm, in a different shape: per super-block into plain arrays,
 * nearest_int by ggml's own float trick), byte for byte on random super-blocks of several
 * distributions; plus hand-checked cases and dequantization error bounds through core's readers.
 */
class KQuantizerTest {

    /** ggml's nearest_int exactly as published: add 1.5 * 2^23 and read the mantissa. */
    private static int ggmlNearestInt(float v) {
        int bits = Float.floatToRawIntBits(v + 12582912f);
        return (bits & 0x007fffff) - 0x00400000;
    }

    private static float[] randomRow(Random random, int cols, int kind) {
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = switch (kind) {
                case 0 -> (float) random.nextGaussian() * 0.02f;
                case 1 -> random.nextFloat() * 3 - 1;          // mostly positive: exercises min > 0
                case 2 -> (float) (random.nextGaussian() * Math.exp(random.nextGaussian() * 2)); // heavy tails
                default -> random.nextInt(7) - 3;               // many ties
            };
        }
        if (kind == 2) {
            for (int i = 0; i < 32; i++) {
                x[random.nextInt(cols)] = 0; // zeros inside
            }
        }
        return x;
    }

    // ---- the independent transcription -------------------------------------------------------

    private static byte[] referenceQ4K(float[] x) {
        return referenceQ4KOrQ5K(x, false);
    }

    /**
     * Q5_K is Q4_K's algorithm with nmax 31, rmin -0.5 and 15 steps, 176-byte super-blocks: qh[32]
     * at 16 (bit s of qh[i]: the fifth bit of sub-block s's value i), qs at 48.
     */
    private static byte[] referenceQ4KOrQ5K(float[] x, boolean q5) {
        int nmax = q5 ? 31 : 15;
        float rmin = q5 ? -0.5f : -1f;
        int nstep = q5 ? 15 : 20;
        byte[] out = new byte[q5 ? KQuantizer.Q5_K_BYTES : KQuantizer.Q4_K_BYTES];
        int[] level = new int[256];
        float[] sc = new float[8];
        float[] mn = new float[8];
        for (int s = 0; s < 8; s++) {
            float[] v = new float[32];
            float[] w = new float[32];
            System.arraycopy(x, 32 * s, v, 0, 32);
            float ss = 0;
            for (float a : v) {
                ss = ss + a * a;
            }
            float av = (float) Math.sqrt(ss / 32f);
            for (int i = 0; i < 32; i++) {
                w[i] = av + Math.abs(v[i]);
            }
            // make_qkx2_quants(32, nmax, ..., rmin, rdelta 0.1, nstep, use_mad false)
            float lo = v[0];
            float hi = v[0];
            float sw = w[0];
            float sx = w[0] * v[0];
            for (int i = 1; i < 32; i++) {
                lo = Math.min(lo, v[i]);
                hi = Math.max(hi, v[i]);
                sw = sw + w[i];
                sx = sx + w[i] * v[i];
            }
            if (lo > 0) {
                lo = 0;
            }
            int[] best = new int[32];
            float bestScale;
            float bestMin = lo;
            if (hi == lo) {
                bestScale = 0;
            } else {
                float inv = nmax / (hi - lo);
                bestScale = 1 / inv;
                float err = 0;
                for (int i = 0; i < 32; i++) {
                    best[i] = Math.clamp(ggmlNearestInt(inv * (v[i] - lo)), 0, nmax);
                    float d = bestScale * best[i] + lo - v[i];
                    err = err + w[i] * (d * d);
                }
                for (int step = 0; step <= nstep; step++) {
                    float tryInv = (rmin + 0.1f * step + nmax) / (hi - lo); // lo: see the NOTE below
                    int[] cand = new int[32];
                    float l1 = 0;
                    float l2 = 0;
                    float xl = 0;
                    for (int i = 0; i < 32; i++) {
                        cand[i] = Math.clamp(ggmlNearestInt(tryInv * (v[i] - lo)), 0, nmax);
                        l1 = l1 + w[i] * cand[i];
                        l2 = l2 + w[i] * cand[i] * cand[i];
                        xl = xl + w[i] * cand[i] * v[i];
                    }
                    float det = sw * l2 - l1 * l1;
                    if (det > 0) {
                        float a = (sw * xl - sx * l1) / det;
                        float m = (l2 * sx - l1 * xl) / det;
                        if (m > 0) {
                            m = 0;
                            a = xl / l2;
                        }
                        float e = 0;
                        for (int i = 0; i < 32; i++) {
                            float d = a * cand[i] + m - v[i];
                            e = e + w[i] * (d * d);
                        }
                        if (e < err) {
                            err = e;
                            best = cand;
                            bestScale = a;
                            bestMin = m;
                            // NOTE: the reference reuses its min variable: later candidates are
                            // measured from the improved min, not the block's minimum.
                            lo = m;
                        }
                    }
                }
            }
            sc[s] = bestScale;
            mn[s] = -bestMin;
            System.arraycopy(best, 0, level, 32 * s, 32);
        }
        float maxSc = 0;
        float maxMn = 0;
        for (int s = 0; s < 8; s++) {
            maxSc = Math.max(maxSc, sc[s]);
            maxMn = Math.max(maxMn, mn[s]);
        }
        int[] ls = new int[8];
        int[] lm = new int[8];
        for (int s = 0; s < 8; s++) {
            ls[s] = Math.min(63, ggmlNearestInt((maxSc > 0 ? 63f / maxSc : 0f) * sc[s]) & 0xFF);
            lm[s] = Math.min(63, ggmlNearestInt((maxMn > 0 ? 63f / maxMn : 0f) * mn[s]) & 0xFF);
        }
        // The 12 scale bytes as the format describes them (6-bit pairs, high bits in bytes 0..7).
        for (int s = 0; s < 4; s++) {
            out[4 + s] = (byte) (ls[s] | ((ls[s + 4] >> 4) << 6));
            out[8 + s] = (byte) (lm[s] | ((lm[s + 4] >> 4) << 6));
            out[12 + s] = (byte) ((ls[s + 4] & 0xF) | ((lm[s + 4] & 0xF) << 4));
        }
        short d = Float.floatToFloat16(maxSc / 63f);
        short dmin = Float.floatToFloat16(maxMn / 63f);
        out[0] = (byte) d;
        out[1] = (byte) (d >> 8);
        out[2] = (byte) dmin;
        out[3] = (byte) (dmin >> 8);
        for (int s = 0; s < 8; s++) {
            float ds = Float.float16ToFloat(d) * ls[s];
            if (ds == 0) {
                continue;
            }
            float dm = Float.float16ToFloat(dmin) * lm[s];
            for (int i = 0; i < 32; i++) {
                level[32 * s + i] = Math.clamp(ggmlNearestInt((x[32 * s + i] + dm) / ds), 0, nmax);
            }
        }
        int qs = q5 ? 48 : 16;
        for (int i = 0; i < 128; i++) {
            int chunk = i / 32;
            int l = i % 32;
            int first = level[64 * chunk + l];
            int second = level[64 * chunk + 32 + l];
            out[qs + i] = (byte) ((first & 0xF) | ((second & 0xF) << 4));
            if (q5) {
                out[16 + l] |= (byte) ((first >> 4) << (2 * chunk) | (second >> 4) << (2 * chunk + 1));
            }
        }
        return out;
    }

    private static byte[] referenceQ6K(float[] x) {
        byte[] out = new byte[KQuantizer.Q6_K_BYTES];
        int[] level = new int[256];
        float[] sc = new float[16];
        float maxScale = 0;
        float maxAbs = 0;
        for (int g = 0; g < 16; g++) {
            // make_qx_quants(16, 32, ..., rmse_type 1, no weights)
            float max = 0;
            float amax = 0;
            for (int i = 0; i < 16; i++) {
                if (Math.abs(x[16 * g + i]) > amax) {
                    amax = Math.abs(x[16 * g + i]);
                    max = x[16 * g + i];
                }
            }
            float scale = 0;
            if (amax >= 1e-15f) {
                float bestMetric = 0;
                for (int is = 0; is <= 18; is++) {
                    int step = is == 0 ? 0 : (is <= 9 ? is - 10 : is - 9); // 0 first, then -9..-1, 1..9
                    float inv = step == 0 ? -32 / max : -(32 + 0.1f * step) / max;
                    float lx = 0;
                    float l2 = 0;
                    int[] cand = new int[16];
                    for (int i = 0; i < 16; i++) {
                        float v = x[16 * g + i];
                        cand[i] = Math.clamp(ggmlNearestInt(inv * v), -32, 31);
                        float w = v * v;
                        lx = lx + w * v * cand[i];
                        l2 = l2 + w * cand[i] * cand[i];
                    }
                    boolean take = step == 0 || (l2 > 0 && lx * lx > bestMetric * l2);
                    if (take) {
                        scale = step == 0 && l2 == 0 ? 0 : lx / l2;
                        bestMetric = scale * lx;
                        for (int i = 0; i < 16; i++) {
                            level[16 * g + i] = cand[i] + 32;
                        }
                    }
                }
            } else {
                for (int i = 0; i < 16; i++) {
                    level[16 * g + i] = 0;
                }
            }
            sc[g] = scale;
            if (Math.abs(scale) > maxAbs) {
                maxAbs = Math.abs(scale);
                maxScale = scale;
            }
        }
        if (maxAbs < 1e-15f) {
            return out;
        }
        float inv = -128f / maxScale;
        short d = Float.floatToFloat16(1 / inv);
        for (int g = 0; g < 16; g++) {
            out[192 + g] = (byte) Math.min(127, ggmlNearestInt(inv * sc[g]));
            float dg = Float.float16ToFloat(d) * out[192 + g];
            if (dg == 0) {
                continue;
            }
            for (int i = 0; i < 16; i++) {
                level[16 * g + i] = Math.clamp(ggmlNearestInt(x[16 * g + i] / dg), -32, 31) + 32;
            }
        }
        out[208] = (byte) d;
        out[209] = (byte) (d >> 8);
        for (int v = 0; v < 256; v++) { // scatter each value's 6 bits to where the format keeps them
            int h = v / 128;
            int k = (v % 128) / 32;
            int l = v % 32;
            int lowByte = 64 * h + 32 * (k & 1) + l;
            out[lowByte] |= (byte) ((level[v] & 0xF) << (k >= 2 ? 4 : 0));
            out[128 + 32 * h + l] |= (byte) ((level[v] >> 4) << (2 * k));
        }
        return out;
    }

    // ---- tests -----------------------------------------------------------------------------

    private static byte[] quantize(GgmlType type, float[] row) {
        try (Arena arena = Arena.ofConfined()) {
            return GgmlQuantizer.quantize(type, row, 1, row.length, arena).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @Test
    void nearestIntMatchesGgmlsFloatTrick() {
        Random random = TestRandom.create("nearestIntMatchesGgmlsFloatTrick");
        for (int i = 0; i < 100_000; i++) {
            float v = i % 2 == 0 ? (random.nextInt(200) - 100) / 2f : (random.nextFloat() - 0.5f) * 4000;
            assertEquals(ggmlNearestInt(v), KQuantizer.nearestInt(v), "at " + v);
        }
    }

    @Test
    void q4KEqualsTheReferenceOnRandomSuperBlocks() {
        Random random = TestRandom.create("q4KEqualsTheReferenceOnRandomSuperBlocks");
        for (int trial = 0; trial < 400; trial++) {
            float[] x = randomRow(random, 256, trial % 4);
            assertArrayEquals(referenceQ4K(x), quantize(GgmlType.Q4_K, x), "trial " + trial + " kind " + trial % 4);
        }
    }

    @Test
    void q5KEqualsTheReferenceOnRandomSuperBlocks() {
        Random random = TestRandom.create("q5KEqualsTheReferenceOnRandomSuperBlocks");
        for (int trial = 0; trial < 400; trial++) {
            float[] x = randomRow(random, 256, trial % 4);
            assertArrayEquals(referenceQ4KOrQ5K(x, true), quantize(GgmlType.Q5_K, x), "trial " + trial + " kind " + trial % 4);
        }
    }

    @Test
    void q6KEqualsTheReferenceOnRandomSuperBlocks() {
        Random random = TestRandom.create("q6KEqualsTheReferenceOnRandomSuperBlocks");
        for (int trial = 0; trial < 400; trial++) {
            float[] x = randomRow(random, 256, trial % 4);
            assertArrayEquals(referenceQ6K(x), quantize(GgmlType.Q6_K, x), "trial " + trial + " kind " + trial % 4);
        }
    }

    @Test
    void allZeroBlocksAreAllZeroBytes() {
        float[] zeros = new float[512];
        for (byte b : quantize(GgmlType.Q4_K, zeros)) {
            assertEquals(0, b);
        }
        for (byte b : quantize(GgmlType.Q5_K, zeros)) {
            assertEquals(0, b);
        }
        for (byte b : quantize(GgmlType.Q6_K, zeros)) {
            assertEquals(0, b);
        }
    }

    @Test
    void dequantizedErrorIsWithinHalfAStepOfEachFormat() {
        Random random = TestRandom.create("dequantizedErrorIsWithinHalfAStepOfEachFormat");
        int cols = 768;
        float[] x = randomRow(random, cols, 0);
        float amax = 0;
        for (float v : x) {
            amax = Math.max(amax, Math.abs(v));
        }
        try (Arena arena = Arena.ofConfined()) {
            for (GgmlType type : new GgmlType[] {GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K}) {
                MemorySegment blocks = GgmlQuantizer.quantize(type, x, 1, cols, arena);
                WeightMatrix w = WeightMatrices.of("t", type, 1, cols, blocks);
                float[] back = new float[cols];
                w.dequantizeRow(0, back, 0);
                double maxErr = 0;
                for (int i = 0; i < cols; i++) {
                    maxErr = Math.max(maxErr, Math.abs(back[i] - x[i]));
                }
                // Q4_K: a range of at most 2 * amax over 15 steps; Q5_K over 31; Q6_K: amax over
                // 32 steps. The 6-bit sub-scales add up to one more step of slack.
                double bound = switch (type) {
                    case Q4_K -> 2 * amax / 15;
                    case Q5_K -> 2 * amax / 31;
                    default -> amax / 32 * 1.5;
                };
                assertTrue(maxErr <= bound, type + " max error " + maxErr + " > " + bound);
                assertTrue(maxErr > 0, type + " is lossy: an exact result means nothing was quantized");
            }
        }
    }

    @Test
    void rowsThatAreNotWholeSuperBlocksAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> quantize(GgmlType.Q4_K, new float[300]));
        assertTrue(e.getMessage().contains("256"), e.getMessage());
    }
}
