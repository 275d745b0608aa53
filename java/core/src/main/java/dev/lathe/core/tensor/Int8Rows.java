package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.BYTES;
import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

/**
 * Vectors of symmetric int8 in {@code byte[]} arrays with one f32 scale each, as the CPU backend's
 * int8 KV cache stores every (token, kv-head) vector of K and V: {@code x ~ scale * q},
 * {@code scale = max|x| / 127}, {@code q = rint(x / scale)} in [-127, 127] (round half to even,
 * as {@link Math#rint}; -128 is never written, so the range is symmetric). The kernels take the
 * int8 values and leave the scale to the caller, who folds it into one multiply per vector:
 * a score is {@code scale_k * dot(q, k)}, a value row is added as {@code axpy(p * scale_v, v)}.
 * The bytes are widened to f32 in registers ({@link BlockLanes#toFloats}); nothing is dequantized
 * into memory.
 */
public final class Int8Rows {
    private Int8Rows() {
    }

    /**
     * Quantizes {@code src[srcOffset .. + n)} into {@code dst[dstOffset .. + n)} and returns its
     * scale. An all-zero vector (or one whose absmax / 127 underflows to 0) is stored as zeros with
     * scale 0.
     */
    public static float quantize(float[] src, int srcOffset, byte[] dst, int dstOffset, int n) {
        // NOTE: scalar on purpose: a token's K and V are written once and read by every later
        // token's attention, so the write is a vanishing share of the time.
        float absmax = 0;
        for (int i = 0; i < n; i++) {
            absmax = Math.max(absmax, Math.abs(src[srcOffset + i]));
        }
        float scale = absmax / 127f;
        if (scale == 0) {
            java.util.Arrays.fill(dst, dstOffset, dstOffset + n, (byte) 0);
            return 0f;
        }
        for (int i = 0; i < n; i++) {
            // x / scale is within an ulp or two of +-127 at the absmax; the clamp keeps -128 out.
            float q = (float) Math.rint(src[srcOffset + i] / scale);
            dst[dstOffset + i] = (byte) Math.max(-127, Math.min(127, (int) q));
        }
        return scale;
    }

    /** {@code sum_i x[xOffset + i] * q[qOffset + i]}, in f32, for {@code i < n}; multiply by the scale after. */
    public static float dot(float[] x, int xOffset, byte[] q, int qOffset, int n) {
        FloatVector acc = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            acc = toFloats(ByteVector.fromArray(BYTES, q, qOffset + i)).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc);
        }
        float sum = LaneSums.sum(acc);
        for (; i < n; i++) {
            sum += x[xOffset + i] * q[qOffset + i];
        }
        return sum;
    }

    /** {@code y[yOffset + i] += alpha * q[qOffset + i]}, in f32, for {@code i < n}; alpha carries the scale. */
    public static void axpy(float alpha, byte[] q, int qOffset, float[] y, int yOffset, int n) {
        FloatVector a = FloatVector.broadcast(FLOATS, alpha);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            toFloats(ByteVector.fromArray(BYTES, q, qOffset + i)).fma(a, FloatVector.fromArray(FLOATS, y, yOffset + i))
                    .intoArray(y, yOffset + i);
        }
        for (; i < n; i++) {
            y[yOffset + i] += alpha * q[qOffset + i];
        }
    }
}
