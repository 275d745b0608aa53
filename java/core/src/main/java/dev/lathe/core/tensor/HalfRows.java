package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import jdk.incubator.vector.FloatVector;

/**
 * Rows of 16-bit floats (IEEE f16, or bfloat16 when {@code bfloat16} is set) in {@code short[]}
 * arrays, as the CPU backend's f16/bf16 KV cache stores K and V: encoded with the weight formats'
 * rounding ({@link Float#floatToFloat16}, {@link Bf16Matrix#toBf16}: nearest even) and widened in
 * registers with their conversions ({@link BlockLanes#halvesToFloats}, {@link BlockLanes#bf16ToFloats}).
 * The arithmetic is f32.
 */
public final class HalfRows {
    private HalfRows() {
    }

    /** {@code dst[dstOffset + i] = half(src[srcOffset + i])} for {@code i < n}, rounded to nearest even. */
    public static void encode(float[] src, int srcOffset, short[] dst, int dstOffset, int n, boolean bfloat16) {
        if (bfloat16) {
            for (int i = 0; i < n; i++) {
                dst[dstOffset + i] = Bf16Matrix.toBf16(src[srcOffset + i]);
            }
        } else {
            for (int i = 0; i < n; i++) {
                dst[dstOffset + i] = Float.floatToFloat16(src[srcOffset + i]);
            }
        }
    }

    /** The f32 value of one stored half. */
    public static float widen(short half, boolean bfloat16) {
        return bfloat16 ? Float.intBitsToFloat(half << 16) : Float.float16ToFloat(half);
    }

    private static FloatVector load(short[] halves, int index, boolean bfloat16) {
        return bfloat16 ? BlockLanes.bf16ToFloats(BlockLanes.loadShorts(halves, index))
                : BlockLanes.halvesToFloats(BlockLanes.loadShorts(halves, index));
    }

    /** {@code sum_i x[xOffset + i] * halves[hOffset + i]}, in f32, for {@code i < n}. */
    public static float dot(float[] x, int xOffset, short[] halves, int hOffset, int n, boolean bfloat16) {
        FloatVector acc = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            acc = load(halves, hOffset + i, bfloat16).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc);
        }
        float sum = LaneSums.sum(acc);
        for (; i < n; i++) {
            sum += x[xOffset + i] * widen(halves[hOffset + i], bfloat16);
        }
        return sum;
    }

    /** {@code y[yOffset + i] += alpha * halves[hOffset + i]}, in f32, for {@code i < n}. */
    public static void axpy(float alpha, short[] halves, int hOffset, float[] y, int yOffset, int n, boolean bfloat16) {
        FloatVector a = FloatVector.broadcast(FLOATS, alpha);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            load(halves, hOffset + i, bfloat16).fma(a, FloatVector.fromArray(FLOATS, y, yOffset + i)).intoArray(y, yOffset + i);
        }
        for (; i < n; i++) {
            y[yOffset + i] += alpha * widen(halves[hOffset + i], bfloat16);
        }
    }
}
