package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.bitMask;
import static dev.lathe.core.tensor.BlockLanes.highNibbles;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.lowNibbles;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * Q5_0 (ggml block_q5_0): blocks of 32 values, 22 bytes: {@code f16 d}, {@code uint8 qh[4]} (a
 * little-endian 32-bit field: bit j is the fifth bit of value j), then {@code uint8 qs[16]} with
 * the nibble order of Q4_0; a value is {@code (q - 16) * d}, q in 0..31.
 * Roofline: 0.6875 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: the fifth bits become a lane mask ({@link BlockLanes#bitMask}) that ORs 16 into the
 * nibbles in byte lanes; then as Q4_0.
 */
final class Q5_0Matrix extends MappedMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 22;
    private static final int QH = 2;
    private static final int QS = 6;
    private static final byte ZERO_POINT = 16;

    Q5_0Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q5_0;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block);
            int highBits = data.get(INT, block + QH);
            int o = outOffset + b * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int packed = data.get(BYTE, block + QS + j) & 0xFF;
                int q0 = (packed & 0x0F) | ((highBits >>> j) & 1) << 4;
                int q1 = (packed >>> 4) | ((highBits >>> (j + BLOCK / 2)) & 1) << 4;
                out[o + j] = (q0 - 16) * d;
                out[o + j + BLOCK / 2] = (q1 - 16) * d;
            }
        }
    }

    /** Values {@code half * 16 + j ..} of a block as signed quants {@code q - 16}, widened. */
    private static FloatVector quants(ByteVector packed, int half, int highBits, int j) {
        ByteVector nibbles = half == 0 ? lowNibbles(packed) : highNibbles(packed);
        VectorMask<Byte> fifthBit = bitMask(highBits >>> (half * (BLOCK / 2) + j));
        return toFloats(nibbles.lanewise(VectorOperators.OR, (byte) 16, fifthBit).sub(ZERO_POINT));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            int highBits = data.get(INT, block + QH);
            FloatVector qx = FloatVector.zero(FLOATS);
            for (int j = 0; j < BLOCK / 2; j += LANES) {
                ByteVector packed = loadBytes(data, block + QS + j);
                for (int half = 0; half < 2; half++) {
                    FloatVector xv = FloatVector.fromArray(FLOATS, x, xOffset + b * BLOCK + half * (BLOCK / 2) + j);
                    qx = quants(packed, half, highBits, j).fma(xv, qx);
                }
            }
            acc = qx.fma(FloatVector.broadcast(FLOATS, half(block)), acc);
        }
        return LaneSums.sum(acc);
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
            int highBits = data.get(INT, block + QH);
            for (int j = 0; j < BLOCK / 2; j += LANES) {
                ByteVector packed = loadBytes(data, block + QS + j);
                for (int half = 0; half < 2; half++) {
                    FloatVector w = quants(packed, half, highBits, j).mul(d);
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
