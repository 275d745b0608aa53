package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * INT8 per output channel ({@link LatheFormat.Kind#INT8_CHANNEL}): per row an f32 scale then
 * {@code cols} int8; value {@code scale * q}. Roofline: ~1 byte and 2 FLOPs per value.
 * Kernel: the int8 are widened in registers and multiplied with x; the row sum is scaled once.
 */
final class Int8ChannelMatrix extends LatheMatrix {
    private static final int QS = 4;

    Int8ChannelMatrix(String name, int rows, int cols, MemorySegment data) {
        super(name, LatheFormat.int8Channel(), rows, cols, data);
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long base = rowOffset(row);
        float scale = data.get(FLOAT, base);
        for (int i = 0; i < cols; i++) {
            out[outOffset + i] = scale * data.get(BYTE, base + QS + i);
        }
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long base = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i + 2 * LANES <= cols; i += 2 * LANES) {
            acc0 = toFloats(loadBytes(data, base + QS + i)).fma(FloatVector.fromArray(FLOATS, x, xOffset + i), acc0);
            acc1 = toFloats(loadBytes(data, base + QS + i + LANES)).fma(FloatVector.fromArray(FLOATS, x, xOffset + i + LANES), acc1);
        }
        float sum = LaneSums.sum(acc0.add(acc1));
        for (; i < cols; i++) {
            sum += data.get(BYTE, base + QS + i) * x[xOffset + i];
        }
        return data.get(FLOAT, base) * sum;
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long base = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i + LANES <= cols; i += LANES) {
            FloatVector w = toFloats(loadBytes(data, base + QS + i));
            int xi = xOffset + i;
            acc0 = w.fma(FloatVector.fromArray(FLOATS, x, xi), acc0);
            acc1 = w.fma(FloatVector.fromArray(FLOATS, x, xi + xStride), acc1);
            acc2 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 2 * xStride), acc2);
            acc3 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 3 * xStride), acc3);
        }
        float s0 = LaneSums.sum(acc0);
        float s1 = LaneSums.sum(acc1);
        float s2 = LaneSums.sum(acc2);
        float s3 = LaneSums.sum(acc3);
        for (; i < cols; i++) {
            float w = data.get(BYTE, base + QS + i);
            s0 += w * x[xOffset + i];
            s1 += w * x[xOffset + xStride + i];
            s2 += w * x[xOffset + 2 * xStride + i];
            s3 += w * x[xOffset + 3 * xStride + i];
        }
        float scale = data.get(FLOAT, base);
        sums[0] = scale * s0;
        sums[1] = scale * s1;
        sums[2] = scale * s2;
        sums[3] = scale * s3;
    }

    /** Writes {@code cols} int8 levels and the row's scale at {@code dst[dstOffset..]}. */
    static void packRow(byte[] levels, int levelOffset, int cols, float scale, MemorySegment dst, long dstOffset) {
        dst.set(FLOAT, dstOffset, scale);
        MemorySegment.copy(levels, levelOffset, dst, BYTE, dstOffset + QS, cols);
    }
}
