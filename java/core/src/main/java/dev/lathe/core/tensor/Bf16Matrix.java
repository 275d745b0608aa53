package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * BF16: the high 16 bits of an f32, 2 bytes per value, widened by a shift in registers.
 * Roofline: 2 bytes and 2 FLOPs per value.
 */
final class Bf16Matrix extends MappedMatrix {

    Bf16Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.BF16;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long offset = rowOffset(row);
        for (int i = 0; i < cols; i++) {
            out[outOffset + i] = Float.intBitsToFloat(data.get(HALF, offset + 2L * i) << 16);
        }
    }

    private FloatVector load(long offset) {
        return BlockLanes.bf16ToFloats(BlockLanes.loadShorts(data, offset));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long offset = rowOffset(row);
        // NOTE: four independent accumulators hide the FMA latency; one would serialize the loop.
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= cols - 4 * LANES; i += 4 * LANES) {
            long at = offset + 2L * i;
            acc0 = load(at).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc0);
            acc1 = load(at + 2L * LANES).fma(FloatVector.fromArray(FLOATS, x, xOffset + i + LANES), acc1);
            acc2 = load(at + 4L * LANES).fma(FloatVector.fromArray(FLOATS, x, xOffset + i + 2 * LANES), acc2);
            acc3 = load(at + 6L * LANES).fma(FloatVector.fromArray(FLOATS, x, xOffset + i + 3 * LANES), acc3);
        }
        for (; i <= cols - LANES; i += LANES) {
            acc0 = load(offset + 2L * i).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc0);
        }
        float sum = LaneSums.sum(acc0.add(acc1).add(acc2.add(acc3)));
        for (; i < cols; i++) {
            sum += Float.intBitsToFloat(data.get(HALF, offset + 2L * i) << 16) * x[xOffset + i];
        }
        return sum;
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long offset = rowOffset(row);
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
            FloatVector w = load(offset + 2L * i);
            acc0 = w.fma(FloatVector.fromArray(FLOATS, x, x0 + i), acc0);
            acc1 = w.fma(FloatVector.fromArray(FLOATS, x, x1 + i), acc1);
            acc2 = w.fma(FloatVector.fromArray(FLOATS, x, x2 + i), acc2);
            acc3 = w.fma(FloatVector.fromArray(FLOATS, x, x3 + i), acc3);
        }
        float s0 = LaneSums.sum(acc0);
        float s1 = LaneSums.sum(acc1);
        float s2 = LaneSums.sum(acc2);
        float s3 = LaneSums.sum(acc3);
        for (; i < cols; i++) {
            float w = Float.intBitsToFloat(data.get(HALF, offset + 2L * i) << 16);
            s0 += w * x[x0 + i];
            s1 += w * x[x1 + i];
            s2 += w * x[x2 + i];
            s3 += w * x[x3 + i];
        }
        sums[0] = s0;
        sums[1] = s1;
        sums[2] = s2;
        sums[3] = s3;
    }

    /**
     * Writes {@code cols} floats as bf16, rounding to nearest even (ggml's fp32 to bf16): NaNs stay
     * NaN (quiet), everything else rounds on the dropped 16 bits.
     */
    static void encodeRow(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        for (int i = 0; i < cols; i++) {
            dst.set(HALF, dstOffset + 2L * i, toBf16(src[srcOffset + i]));
        }
    }

    /** The bf16 nearest to {@code value} (ties to even); NaN stays a quiet NaN. */
    static short toBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }
}
