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
 * Q4_0 (ggml block_q4_0): blocks of 32 values, 18 bytes: {@code f16 d} then {@code uint8 qs[16]};
 * the low nibble of {@code qs[j]} is value {@code j}, the high nibble value {@code j + 16}, and a
 * value is {@code (q - 8) * d}. Roofline: 0.5625 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: unpack nibbles and subtract 8 in byte lanes, widen to floats, FMA with x into a
 * block sum scaled once by d; two blocks per iteration into independent accumulators.
 */
final class Q4_0Matrix extends MappedMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 18;
    private static final int QS = 2;
    private static final byte ZERO_POINT = 8;

    Q4_0Matrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_0;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block);
            int o = outOffset + b * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int packed = data.get(BYTE, block + QS + j) & 0xFF;
                out[o + j] = ((packed & 0x0F) - 8) * d;
                out[o + j + BLOCK / 2] = ((packed >>> 4) - 8) * d;
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
            int o = outOffset + b * BLOCK;
            for (int j = 0; j < BLOCK / 2; j += LANES) {
                ByteVector packed = loadBytes(data, block + QS + j);
                toFloats(lowNibbles(packed).sub(ZERO_POINT)).mul(d).intoArray(out, o + j);
                toFloats(highNibbles(packed).sub(ZERO_POINT)).mul(d).intoArray(out, o + BLOCK / 2 + j);
            }
        }
    }

    private FloatVector blockSum(long block, float[] x, int xi) {
        FloatVector sum = FloatVector.zero(FLOATS);
        for (int j = 0; j < BLOCK / 2; j += LANES) {
            ByteVector packed = loadBytes(data, block + QS + j);
            sum = toFloats(lowNibbles(packed).sub(ZERO_POINT)).fma(FloatVector.fromArray(FLOATS, x, xi + j), sum);
            sum = toFloats(highNibbles(packed).sub(ZERO_POINT))
                    .fma(FloatVector.fromArray(FLOATS, x, xi + BLOCK / 2 + j), sum);
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

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long block = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(FLOATS, half(block));
            for (int j = 0; j < BLOCK / 2; j += LANES) {
                ByteVector packed = loadBytes(data, block + QS + j);
                for (int half = 0; half < 2; half++) {
                    ByteVector q = half == 0 ? lowNibbles(packed) : highNibbles(packed);
                    FloatVector w = toFloats(q.sub(ZERO_POINT)).mul(d);
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

    /**
     * ggml's reference quantizer (quantize_row_q4_0_ref): per block, {@code max} is the value of
     * largest magnitude (with its sign), {@code d = max / -8}, {@code q = min(15, (int) (x / d + 8.5))}.
     * {@code cols} must be a multiple of 32.
     */
    static void quantizeRow(float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        for (int b = 0; b < cols / BLOCK; b++) {
            int base = srcOffset + b * BLOCK;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0;
            float max = 0;
            for (int j = 0; j < BLOCK; j++) {
                float v = src[base + j];
                if (Math.abs(v) > amax) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1 / d : 0;
            dst.set(HALF, block, Float.floatToFloat16(d));
            for (int j = 0; j < BLOCK / 2; j++) {
                int lo = Math.min(15, (int) (src[base + j] * id + 8.5f));
                int hi = Math.min(15, (int) (src[base + BLOCK / 2 + j] * id + 8.5f));
                dst.set(BYTE, block + QS + j, (byte) (lo | hi << 4));
            }
        }
    }
}
