package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.highNibbles;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.lowNibbles;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;

/**
 * Q4_1 (ggml block_q4_1): blocks of 32 values, 20 bytes: {@code f16 d}, {@code f16 m}, then
 * {@code uint8 qs[16]} with the nibble order of Q4_0; a value is {@code q * d + m}.
 * Roofline: 0.625 bytes and 2 FLOPs per value (plus one add for the sum of x).
 *
 * <p>Kernel: {@code sum(w x) = d * sum(q x) + m * sum(x)}, both sums taken per block in registers.
 */
final class Q4_1Matrix extends MappedMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 20;
    private static final int MIN = 2;
    private static final int QS = 4;

    Q4_1Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_1;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block);
            float m = half(block + MIN);
            int o = outOffset + b * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int packed = data.get(BYTE, block + QS + j) & 0xFF;
                out[o + j] = (packed & 0x0F) * d + m;
                out[o + j + BLOCK / 2] = (packed >>> 4) * d + m;
            }
        }
    }

    /** The quants of the block's first ({@code half} 0, low nibbles) or second (1, high nibbles) 16 values, widened. */
    private FloatVector quants(ByteVector packed, int half) {
        return toFloats(half == 0 ? lowNibbles(packed) : highNibbles(packed));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc = FloatVector.zero(FLOATS);
        FloatVector accMin = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            FloatVector qx = FloatVector.zero(FLOATS);
            FloatVector xs = FloatVector.zero(FLOATS);
            for (int j = 0; j < BLOCK / 2; j += LANES) {
                ByteVector packed = loadBytes(data, block + QS + j);
                for (int half = 0; half < 2; half++) {
                    FloatVector xv = FloatVector.fromArray(FLOATS, x, xOffset + b * BLOCK + half * (BLOCK / 2) + j);
                    qx = quants(packed, half).fma(xv, qx);
                    xs = xs.add(xv);
                }
            }
            acc = qx.fma(FloatVector.broadcast(FLOATS, half(block)), acc);
            accMin = xs.fma(FloatVector.broadcast(FLOATS, half(block + MIN)), accMin);
        }
        return LaneSums.sum(acc.add(accMin));
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
            FloatVector m = FloatVector.broadcast(FLOATS, half(block + MIN));
            for (int j = 0; j < BLOCK / 2; j += LANES) {
                ByteVector packed = loadBytes(data, block + QS + j);
                for (int half = 0; half < 2; half++) {
                    FloatVector w = quants(packed, half).fma(d, m);
                    int xi = xOffset + b * BLOCK + half * (BLOCK / 2) + j;
                    acc0 = w.fma(FloatVector.fromArray(FLOATS, x, xi), acc0);
                    acc1 = w.fma(FloatVector.fromArray(FLOATS, x, xi + xStride), acc1);
                    acc2 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 2 * xStride), acc2);
                    acc3 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 3 * xStride), acc3);
                }
            }
        }
        LaneSums.sum4(acc0, acc1, acc2, acc3, sums);
    }
}
