package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * Q8_0 (ggml block_q8_0): blocks of 32 values, 34 bytes: {@code f16 d} then {@code int8 qs[32]};
 * value {@code j} is {@code d * qs[j]}. Roofline: 1.0625 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: per block, the 32 int8 are widened to floats in registers and multiplied with x
 * into a block sum, which is scaled by d once; two blocks per iteration go to independent
 * accumulators so consecutive blocks' FMA chains overlap. Tried without a measurable difference
 * on the (shared, noisy) 2-core development machine: block offsets computed from an int index
 * instead of carried along.
 */
final class Q8_0Matrix extends MappedMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 34;
    private static final int QS = 2; // offset of qs in a block

    Q8_0Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q8_0;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block);
            for (int j = 0; j < BLOCK; j++) {
                out[outOffset + b * BLOCK + j] = d * data.get(BYTE, block + QS + j);
            }
        }
    }

    @Override
    boolean hasVectorDequantizer() {
        return true;
    }

    @Override
    void dequantizeRowVector(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(FLOATS, half(block));
            for (int j = 0; j < BLOCK; j += LANES) {
                toFloats(loadBytes(data, block + QS + j)).mul(d).intoArray(out, outOffset + b * BLOCK + j);
            }
        }
    }

    /** {@code sum_j qs[j] * x[xi + j]} over one block, unscaled. */
    private FloatVector blockSum(long block, float[] x, int xi) {
        FloatVector sum = toFloats(loadBytes(data, block + QS)).mul(FloatVector.fromArray(FLOATS, x, xi));
        for (int j = LANES; j < BLOCK; j += LANES) {
            sum = toFloats(loadBytes(data, block + QS + j)).fma(FloatVector.fromArray(FLOATS, x, xi + j), sum);
        }
        return sum;
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        int b = 0;
        int xi = xOffset;
        for (; b + 2 <= blocksPerRow; b += 2, block += 2 * BLOCK_BYTES, xi += 2 * BLOCK) {
            acc0 = blockSum(block, x, xi).fma(FloatVector.broadcast(FLOATS, half(block)), acc0);
            acc1 = blockSum(block + BLOCK_BYTES, x, xi + BLOCK).fma(FloatVector.broadcast(FLOATS, half(block + BLOCK_BYTES)), acc1);
        }
        if (b < blocksPerRow) {
            acc0 = blockSum(block, x, xi).fma(FloatVector.broadcast(FLOATS, half(block)), acc0);
        }
        return LaneSums.sum(acc0.add(acc1));
    }

    /**
     * The matvec (one input): rows in pairs, so two independent weight streams are in flight and
     * each x vector loaded serves both rows. NOTE: measured on the 200M synthetic model's matrices
     * (from memory, one thread, quiet machine): one row at a time 4.2-4.5 GB/s, pairs 5.0-5.1 GB/s.
     */
    @Override
    public void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                        float[] out, int outOffset, int outStride) {
        if (n != 1) {
            super.dotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
            return;
        }
        checkDotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
        int r = rowStart;
        for (; r + 2 <= rowEnd; r += 2) {
            dotPair(r, x, out, outOffset + r);
        }
        if (r < rowEnd) {
            out[outOffset + r] = dot(r, x, 0);
        }
    }

    /** {@code out[at] = dot(row, x)}, {@code out[at + 1] = dot(row + 1, x)}. */
    private void dotPair(int row, float[] x, float[] out, int at) {
        long block0 = rowOffset(row);
        long block1 = rowOffset(row + 1);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        for (int b = 0, xi = 0; b < blocksPerRow; b++, block0 += BLOCK_BYTES, block1 += BLOCK_BYTES, xi += BLOCK) {
            FloatVector xv = FloatVector.fromArray(FLOATS, x, xi);
            FloatVector sum0 = toFloats(loadBytes(data, block0 + QS)).mul(xv);
            FloatVector sum1 = toFloats(loadBytes(data, block1 + QS)).mul(xv);
            for (int j = LANES; j < BLOCK; j += LANES) {
                xv = FloatVector.fromArray(FLOATS, x, xi + j);
                sum0 = toFloats(loadBytes(data, block0 + QS + j)).fma(xv, sum0);
                sum1 = toFloats(loadBytes(data, block1 + QS + j)).fma(xv, sum1);
            }
            acc0 = sum0.fma(FloatVector.broadcast(FLOATS, half(block0)), acc0);
            acc1 = sum1.fma(FloatVector.broadcast(FLOATS, half(block1)), acc1);
        }
        out[at] = LaneSums.sum(acc0);
        out[at + 1] = LaneSums.sum(acc1);
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long block = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(FLOATS, half(block));
            for (int j = 0; j < BLOCK; j += LANES) {
                FloatVector w = toFloats(loadBytes(data, block + QS + j)).mul(d);
                int xi = xOffset + b * BLOCK + j;
                acc0 = w.fma(FloatVector.fromArray(FLOATS, x, xi), acc0);
                acc1 = w.fma(FloatVector.fromArray(FLOATS, x, xi + xStride), acc1);
                acc2 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 2 * xStride), acc2);
                acc3 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 3 * xStride), acc3);
            }
        }
        LaneSums.sum4(acc0, acc1, acc2, acc3, sums);
    }

    /**
     * ggml's reference quantizer (quantize_row_q8_0_ref): per block {@code d = amax / 127},
     * {@code qs[j] = round(x[j] / d)} (half away from zero); d is stored as f16.
     * {@code cols} must be a multiple of 32.
     */
    static void quantizeRow(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        for (int b = 0; b < cols / BLOCK; b++) {
            int base = srcOffset + b * BLOCK;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0;
            for (int j = 0; j < BLOCK; j++) {
                amax = Math.max(amax, Math.abs(src[base + j]));
            }
            float d = amax / 127;
            float id = d != 0 ? 1 / d : 0;
            dst.set(HALF, block, Float.floatToFloat16(d));
            for (int j = 0; j < BLOCK; j++) {
                dst.set(BYTE, block + QS + j, (byte) roundHalfAway(src[base + j] * id));
            }
        }
    }

    /** C's roundf: to nearest, ties away from zero (Math.round ties toward +infinity). */
    static int roundHalfAway(float v) {
        return (int) Math.copySign(Math.floor(Math.abs(v) + 0.5f), v);
    }
}
