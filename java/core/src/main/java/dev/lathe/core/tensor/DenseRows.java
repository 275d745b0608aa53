package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import jdk.incubator.vector.FloatVector;

/**
 * Dot products of already dequantized weight rows (f32 in a Java array) with many inputs: the
 * inner loops of {@link MappedMatrix#dotRows}'s dequantize-once path.
 *
 * <p>Variants: (1) one row by four inputs ({@link #dot4}): a weight vector loaded once for four
 * inputs, five loads per four FMAs; (2, the main one) four rows by four inputs
 * ({@link #dot4x4}): sixteen accumulators, eight loads per sixteen FMAs, so the FMA units rather
 * than the load ports set the pace.
 */
final class DenseRows {
    private DenseRows() {
    }

    /** {@code sums[k] = sum_i w[i] * x[xOffset + k * xStride + i]} for {@code k < 4}, {@code i < cols}. */
    static void dot4(float[] w, int cols, float[] x, int xOffset, int xStride, float[] sums) {
        int x0 = xOffset;
        int x1 = xOffset + xStride;
        int x2 = xOffset + 2 * xStride;
        int x3 = xOffset + 3 * xStride;
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= cols - LANES; i += LANES) {
            FloatVector wv = FloatVector.fromArray(FLOATS, w, i);
            acc0 = wv.fma(FloatVector.fromArray(FLOATS, x, x0 + i), acc0);
            acc1 = wv.fma(FloatVector.fromArray(FLOATS, x, x1 + i), acc1);
            acc2 = wv.fma(FloatVector.fromArray(FLOATS, x, x2 + i), acc2);
            acc3 = wv.fma(FloatVector.fromArray(FLOATS, x, x3 + i), acc3);
        }
        float s0 = LaneSums.sum(acc0);
        float s1 = LaneSums.sum(acc1);
        float s2 = LaneSums.sum(acc2);
        float s3 = LaneSums.sum(acc3);
        for (; i < cols; i++) {
            s0 += w[i] * x[x0 + i];
            s1 += w[i] * x[x1 + i];
            s2 += w[i] * x[x2 + i];
            s3 += w[i] * x[x3 + i];
        }
        sums[0] = s0;
        sums[1] = s1;
        sums[2] = s2;
        sums[3] = s3;
    }

    /**
     * {@code sums[4 * j + k] = sum_i w[j * cols + i] * x[xOffset + k * xStride + i]} for rows
     * {@code j < 4} (stored one after another in {@code w}) and inputs {@code k < 4}.
     */
    static void dot4x4(float[] w, int cols, float[] x, int xOffset, int xStride, float[] sums) {
        int x0 = xOffset;
        int x1 = xOffset + xStride;
        int x2 = xOffset + 2 * xStride;
        int x3 = xOffset + 3 * xStride;
        int w1 = cols;
        int w2 = 2 * cols;
        int w3 = 3 * cols;
        FloatVector a00 = FloatVector.zero(FLOATS), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int i = 0;
        for (; i <= cols - LANES; i += LANES) {
            FloatVector v0 = FloatVector.fromArray(FLOATS, x, x0 + i);
            FloatVector v1 = FloatVector.fromArray(FLOATS, x, x1 + i);
            FloatVector v2 = FloatVector.fromArray(FLOATS, x, x2 + i);
            FloatVector v3 = FloatVector.fromArray(FLOATS, x, x3 + i);
            FloatVector r = FloatVector.fromArray(FLOATS, w, i);
            a00 = r.fma(v0, a00);
            a01 = r.fma(v1, a01);
            a02 = r.fma(v2, a02);
            a03 = r.fma(v3, a03);
            r = FloatVector.fromArray(FLOATS, w, w1 + i);
            a10 = r.fma(v0, a10);
            a11 = r.fma(v1, a11);
            a12 = r.fma(v2, a12);
            a13 = r.fma(v3, a13);
            r = FloatVector.fromArray(FLOATS, w, w2 + i);
            a20 = r.fma(v0, a20);
            a21 = r.fma(v1, a21);
            a22 = r.fma(v2, a22);
            a23 = r.fma(v3, a23);
            r = FloatVector.fromArray(FLOATS, w, w3 + i);
            a30 = r.fma(v0, a30);
            a31 = r.fma(v1, a31);
            a32 = r.fma(v2, a32);
            a33 = r.fma(v3, a33);
        }
        // NOTE: no FloatVector[] here: an array of vectors defeats escape analysis and boxes every accumulator.
        sums[0] = finish(a00, w, 0, x, x0, i, cols);
        sums[1] = finish(a01, w, 0, x, x1, i, cols);
        sums[2] = finish(a02, w, 0, x, x2, i, cols);
        sums[3] = finish(a03, w, 0, x, x3, i, cols);
        sums[4] = finish(a10, w, w1, x, x0, i, cols);
        sums[5] = finish(a11, w, w1, x, x1, i, cols);
        sums[6] = finish(a12, w, w1, x, x2, i, cols);
        sums[7] = finish(a13, w, w1, x, x3, i, cols);
        sums[8] = finish(a20, w, w2, x, x0, i, cols);
        sums[9] = finish(a21, w, w2, x, x1, i, cols);
        sums[10] = finish(a22, w, w2, x, x2, i, cols);
        sums[11] = finish(a23, w, w2, x, x3, i, cols);
        sums[12] = finish(a30, w, w3, x, x0, i, cols);
        sums[13] = finish(a31, w, w3, x, x1, i, cols);
        sums[14] = finish(a32, w, w3, x, x2, i, cols);
        sums[15] = finish(a33, w, w3, x, x3, i, cols);
    }

    /** The lanes of {@code acc} summed, plus the scalar tail {@code [from, cols)} of one row-input pair. */
    private static float finish(FloatVector acc, float[] w, int wOffset, float[] x, int xOffset, int from, int cols) {
        float s = LaneSums.sum(acc);
        for (int i = from; i < cols; i++) {
            s += w[wOffset + i] * x[xOffset + i];
        }
        return s;
    }

    /** {@code sum_i w[wOffset + i] * x[xOffset + i]} for {@code i < cols}. */
    static float dot(float[] w, int wOffset, int cols, float[] x, int xOffset) {
        FloatVector acc = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= cols - LANES; i += LANES) {
            acc = FloatVector.fromArray(FLOATS, w, wOffset + i).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc);
        }
        float sum = LaneSums.sum(acc);
        for (; i < cols; i++) {
            sum += w[wOffset + i] * x[xOffset + i];
        }
        return sum;
    }
}
