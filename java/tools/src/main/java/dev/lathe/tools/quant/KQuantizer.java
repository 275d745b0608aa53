package dev.lathe.tools.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * ggml's reference quantizers for the k-quant super-blocks Q4_K, Q5_K and Q6_K (quantize_row_q4_K_ref,
 * quantize_row_q5_K_ref, quantize_row_q6_K_ref in ggml-quants.c, with their helpers make_qkx2_quants and
 * make_qx_quants), so llama.cpp reads our files and sees the values its own quantizer would
 * have written. Block layouts are documented on the core readers (Q4_KMatrix, Q5_KMatrix, Q6_KMatrix).
 *
 * <p>Every operation is done in f32 in the reference's order: Java's float arithmetic is strict
 * IEEE, which matches a C build without FMA contraction (the reference ggml build).
 */
public final class KQuantizer {
    /** Values per super-block. */
    public static final int QK_K = 256;
    public static final int Q4_K_BYTES = 144;
    public static final int Q5_K_BYTES = 176;
    public static final int Q6_K_BYTES = 210;
    /** ggml's threshold below which a group counts as all zero. */
    private static final float GROUP_MAX_EPS = 1e-15f;

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private KQuantizer() {
    }

    /**
     * ggml's nearest_int: round to nearest, ties to even (its float trick adds 1.5 * 2^23),
     * valid for |v| < 2^22, which every caller respects.
     */
    static int nearestInt(float v) {
        return (int) Math.rint(v);
    }

    /** f32 to f16 (round to nearest even) and back: the value a reader will see. */
    static float roundTripHalf(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    /**
     * Quantizes {@code cols} values (a multiple of 256) at {@code src[srcOffset..]} as Q4_K
     * super-blocks written at {@code dst[dstOffset..]}.
     */
    public static void quantizeRowQ4K(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        quantizeRowQ4KOrQ5K(src, srcOffset, cols, dst, dstOffset, false);
    }

    /**
     * Quantizes {@code cols} values (a multiple of 256) at {@code src[srcOffset..]} as Q5_K
     * super-blocks written at {@code dst[dstOffset..]}: quantize_row_q5_K_ref, which is Q4_K's
     * algorithm with 32 levels (make_qkx2_quants with nmax 31, rmin -0.5, 15 steps) and the fifth
     * bits in {@code qh} (bit s of {@code qh[c]}: sub-block s, value c).
     */
    public static void quantizeRowQ5K(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        quantizeRowQ4KOrQ5K(src, srcOffset, cols, dst, dstOffset, true);
    }

    private static void quantizeRowQ4KOrQ5K(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset,
                                            boolean fiveBits) {
        int blockBytes = fiveBits ? Q5_K_BYTES : Q4_K_BYTES;
        // make_qkx2_quants' grid: levels 0..nmax, candidate scales from rmin in nstep steps of 0.1
        int nmax = fiveBits ? 31 : 15;
        float rmin = fiveBits ? -0.5f : -1f;
        int nstep = fiveBits ? 15 : 20;
        checkRow(src, srcOffset, cols, dst, dstOffset, blockBytes);
        byte[] levels = new byte[QK_K];
        byte[] scratch = new byte[32];
        float[] weights = new float[32];
        float[] mins = new float[8];
        float[] scales = new float[8];
        float[] theMin = new float[1];
        byte[] packedScales = new byte[12];
        byte[] qh = new byte[32]; // Q5_K's fifth bits of one super-block
        for (int b = 0; b < cols / QK_K; b++) {
            int x = srcOffset + b * QK_K;
            long block = dstOffset + (long) b * blockBytes;
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < 8; j++) {
                float sumX2 = 0;
                for (int l = 0; l < 32; l++) {
                    sumX2 += src[x + 32 * j + l] * src[x + 32 * j + l];
                }
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++) {
                    weights[l] = avX + Math.abs(src[x + 32 * j + l]);
                }
                scales[j] = makeQkx2Quants(32, nmax, src, x + 32 * j, weights, levels, 32 * j, theMin, scratch, rmin,
                        0.1f, nstep);
                mins[j] = theMin[0];
                maxScale = Math.max(maxScale, scales[j]);
                maxMin = Math.max(maxMin, mins[j]);
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            java.util.Arrays.fill(packedScales, (byte) 0);
            for (int j = 0; j < 8; j++) {
                // NOTE: the reference stores nearest_int into a uint8_t before MIN(63, .): keep the wrap.
                int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF);
                int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
                if (j < 4) {
                    packedScales[j] = (byte) ls;
                    packedScales[j + 4] = (byte) lm;
                } else {
                    packedScales[j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
                    packedScales[j - 4] |= (byte) ((ls >> 4) << 6);
                    packedScales[j] |= (byte) ((lm >> 4) << 6);
                }
            }
            short dBits = Float.floatToFloat16(maxScale / 63f);
            short dminBits = Float.floatToFloat16(maxMin / 63f);
            dst.set(HALF, block, dBits);
            dst.set(HALF, block + 2, dminBits);
            MemorySegment.copy(packedScales, 0, dst, ValueLayout.JAVA_BYTE, block + 4, 12);
            float d = Float.float16ToFloat(dBits);
            float dmin = Float.float16ToFloat(dminBits);
            for (int j = 0; j < 8; j++) {
                float subScale = d * scaleK4(packedScales, j);
                if (subScale == 0) {
                    continue; // the levels from make_qkx2_quants stay
                }
                float subMin = dmin * minK4(packedScales, j);
                for (int i = 0; i < 32; i++) {
                    int l = nearestInt((src[x + 32 * j + i] + subMin) / subScale);
                    levels[32 * j + i] = (byte) Math.max(0, Math.min(nmax, l));
                }
            }
            // Q4_K: qs[128] at 16. Q5_K: qh[32] at 16, qs[128] at 48; sub-block 2c + h's fifth bit
            // of value l is bit 2c + h of qh[l], its low 4 bits qs[32c + l]'s low (h = 0) or high nibble.
            long qs = block + (fiveBits ? 48 : 16);
            java.util.Arrays.fill(qh, (byte) 0);
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    int low = levels[64 * c + l];
                    int high = levels[64 * c + 32 + l];
                    qh[l] |= (byte) ((low >> 4) << (2 * c) | (high >> 4) << (2 * c + 1));
                    dst.set(ValueLayout.JAVA_BYTE, qs + 32 * c + l, (byte) ((low & 0x0F) | (high & 0x0F) << 4));
                }
            }
            if (fiveBits) {
                MemorySegment.copy(qh, 0, dst, ValueLayout.JAVA_BYTE, block + 16, 32);
            }
        }
    }

    /** ggml's get_scale_min_k4, scale half. */
    static int scaleK4(byte[] q, int j) {
        return j < 4 ? q[j] & 63 : (q[j + 4] & 0xF) | (((q[j - 4] & 0xFF) >> 6) << 4);
    }

    /** ggml's get_scale_min_k4, min half. */
    static int minK4(byte[] q, int j) {
        return j < 4 ? q[j + 4] & 63 : ((q[j + 4] & 0xFF) >> 4) | (((q[j] & 0xFF) >> 6) << 4);
    }

    /**
     * make_qkx2_quants: an asymmetric {@code [0, nmax]} grid for {@code n} values {@code x[xo..]}
     * with a weighted least-squares refit of scale and min over {@code nstep + 1} candidate
     * scales; levels go to {@code levels[lo..]}, {@code -min} to {@code theMin[0]}; returns the
     * scale. (The reference's use_mad flag is false for Q4_K, so errors are squared.)
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] weights, byte[] levels, int lo,
                                float[] theMin, byte[] scratch, float rmin, float rdelta, int nstep) {
        float min = x[xo];
        float max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            if (x[xo + i] < min) {
                min = x[xo + i];
            }
            if (x[xo + i] > max) {
                max = x[xo + i];
            }
            float w = weights[i];
            sumW += w;
            sumX += w * x[xo + i];
        }
        if (min > 0) {
            min = 0;
        }
        if (max == min) {
            for (int i = 0; i < n; i++) {
                levels[lo + i] = 0;
            }
            theMin[0] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * (x[xo + i] - min));
            levels[lo + i] = (byte) Math.max(0, Math.min(nmax, l));
            float diff = scale * levels[lo + i] + min - x[xo + i];
            bestError += weights[i] * (diff * diff);
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0;
            float sumL2 = 0;
            float sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
                scratch[i] = (byte) l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[xo + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * scratch[i] + thisMin - x[xo + i];
                    error += weights[i] * (diff * diff);
                }
                if (error < bestError) {
                    System.arraycopy(scratch, 0, levels, lo, n);
                    bestError = error;
                    scale = thisScale;
                    // NOTE: as in the reference, later candidates are measured from this min
                    // (iscale and x - min), not the block's minimum: required for bit equality.
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    /**
     * Quantizes {@code cols} values (a multiple of 256) at {@code src[srcOffset..]} as Q6_K
     * super-blocks written at {@code dst[dstOffset..]}.
     */
    public static void quantizeRowQ6K(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        checkRow(src, srcOffset, cols, dst, dstOffset, Q6_K_BYTES);
        byte[] levels = new byte[QK_K];
        float[] scales = new float[16];
        byte[] intScales = new byte[16];
        for (int b = 0; b < cols / QK_K; b++) {
            int x = srcOffset + b * QK_K;
            long block = dstOffset + (long) b * Q6_K_BYTES;
            float maxScale = 0;
            float maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++) {
                float scale = makeQxQuantsRmse1(16, 32, src, x + 16 * ib, levels, 16 * ib);
                scales[ib] = scale;
                float absScale = Math.abs(scale);
                if (absScale > maxAbsScale) {
                    maxAbsScale = absScale;
                    maxScale = scale;
                }
            }
            if (maxAbsScale < GROUP_MAX_EPS) {
                dst.asSlice(block, Q6_K_BYTES).fill((byte) 0);
                continue;
            }
            float iscale = -128f / maxScale;
            short dBits = Float.floatToFloat16(1 / iscale);
            for (int ib = 0; ib < 16; ib++) {
                intScales[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
            }
            float dBlock = Float.float16ToFloat(dBits);
            for (int j = 0; j < 16; j++) {
                float d = dBlock * intScales[j];
                if (d == 0) {
                    continue;
                }
                for (int i = 0; i < 16; i++) {
                    int l = Math.max(-32, Math.min(31, nearestInt(src[x + 16 * j + i] / d)));
                    levels[16 * j + i] = (byte) (l + 32);
                }
            }
            for (int h = 0; h < 2; h++) {
                int j = 128 * h;
                for (int l = 0; l < 32; l++) {
                    int q1 = levels[j + l] & 0xF;
                    int q2 = levels[j + l + 32] & 0xF;
                    int q3 = levels[j + l + 64] & 0xF;
                    int q4 = levels[j + l + 96] & 0xF;
                    dst.set(ValueLayout.JAVA_BYTE, block + 64 * h + l, (byte) (q1 | (q3 << 4)));
                    dst.set(ValueLayout.JAVA_BYTE, block + 64 * h + 32 + l, (byte) (q2 | (q4 << 4)));
                    int high = (levels[j + l] >> 4) | ((levels[j + l + 32] >> 4) << 2)
                            | ((levels[j + l + 64] >> 4) << 4) | ((levels[j + l + 96] >> 4) << 6);
                    dst.set(ValueLayout.JAVA_BYTE, block + 128 + 32 * h + l, (byte) high);
                }
            }
            MemorySegment.copy(intScales, 0, dst, ValueLayout.JAVA_BYTE, block + 192, 16);
            dst.set(HALF, block + 208, dBits);
        }
    }

    /**
     * make_qx_quants with rmse_type 1 and no importance weights (what Q6_K uses): a symmetric
     * {@code [-nmax, nmax)} grid, weights {@code x^2}, the best of 19 candidate scales by the
     * weighted least-squares criterion; levels (offset by nmax) go to {@code levels[lo..]}.
     */
    static float makeQxQuantsRmse1(int n, int nmax, float[] x, int xo, byte[] levels, int lo) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) {
                levels[lo + i] = 0;
            }
            return 0f;
        }
        float iscale = -nmax / max;
        float sumLX = 0;
        float sumL2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
            levels[lo + i] = (byte) (l + nmax);
            float w = x[xo + i] * x[xo + i];
            sumLX += w * x[xo + i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumLX = 0;
            sumL2 = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
                float w = x[xo + i] * x[xo + i];
                sumLX += w * x[xo + i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < n; i++) {
                    int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
                    levels[lo + i] = (byte) (l + nmax);
                }
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    private static void checkRow(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset, int blockBytes) {
        if (cols < 0 || cols % QK_K != 0) {
            throw new IllegalArgumentException(cols + " values are not a whole number of k-quant super-blocks of " + QK_K);
        }
        Objects.checkFromIndexSize(srcOffset, cols, src.length);
        Objects.checkFromIndexSize(dstOffset, (long) cols / QK_K * blockBytes, dst.byteSize());
    }
}
