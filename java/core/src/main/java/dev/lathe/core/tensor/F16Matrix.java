package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * F16: IEEE half-precision values, 2 bytes each, widened to f32 in registers
 * ({@link BlockLanes#halvesToFloats}). Roofline: 2 bytes and 2 FLOPs per value.
 */
final class F16Matrix extends MappedMatrix {

    F16Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.F16;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long offset = rowOffset(row);
        for (int i = 0; i < cols; i++) {
            out[outOffset + i] = Float.float16ToFloat(data.get(HALF, offset + 2L * i));
        }
    }

    private FloatVector load(long offset) {
        return BlockLanes.halvesToFloats(BlockLanes.loadShorts(data, offset));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long offset = rowOffset(row);
        // NOTE: two accumulators, not four as F32: the f16 widening is ~10 vector ops, and four
        // copies of it pushed the method past C2's inlining node budget (the vectors were then
        // heap-allocated). Two already hide the FMA latency at this loop's speed.
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= cols - 2 * LANES; i += 2 * LANES) {
            long at = offset + 2L * i;
            acc0 = load(at).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc0);
            acc1 = load(at + 2L * LANES).fma(FloatVector.fromArray(FLOATS, x, xOffset + i + LANES), acc1);
        }
        for (; i <= cols - LANES; i += LANES) {
            acc0 = load(offset + 2L * i).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc0);
        }
        float sum = LaneSums.sum(acc0.add(acc1));
        for (; i < cols; i++) {
            sum += Float.float16ToFloat(data.get(HALF, offset + 2L * i)) * x[xOffset + i];
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
            float w = Float.float16ToFloat(data.get(HALF, offset + 2L * i));
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

    /** Writes {@code cols} floats as f16 (round to nearest even, {@link Float#floatToFloat16}). */
    static void encodeRow(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        for (int i = 0; i < cols; i++) {
            dst.set(HALF, dstOffset + 2L * i, Float.floatToFloat16(src[srcOffset + i]));
        }
    }
}
