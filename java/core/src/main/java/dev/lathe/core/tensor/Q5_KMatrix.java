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
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * Q5_K (ggml block_q5_K): super-blocks of 256 values, 176 bytes: {@code f16 d}, {@code f16 dmin},
 * {@code uint8 scales[12]} ({@link KQuantScales}), {@code uint8 qh[32]}, {@code uint8 qs[128]}.
 * The nibbles are laid out as in Q4_K; sub-block s takes its fifth bits from bit s of
 * {@code qh[j]} (j = position within the sub-block). Value: {@code d * scale[s] * q - dmin * min[s]},
 * q in 0..31. Roofline: 0.6875 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: as Q4_K (weights formed in registers, then FMA'd with x), with the fifth bit ORed in
 * byte lanes under a mask from {@code qh & (1 << s)}.
 */
final class Q5_KMatrix extends MappedMatrix {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 176;
    private static final int DMIN = 2;
    private static final int SCALES = 4;
    private static final int QH = 16;
    private static final int QS = 48;

    Q5_KMatrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q5_K;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block);
            float dmin = half(block + DMIN);
            long scales8 = KQuantScales.low8(data, block + SCALES);
            int scales4 = KQuantScales.high4(data, block + SCALES);
            for (int c = 0; c < 4; c++) {
                float dLow = d * KQuantScales.scale(scales8, scales4, 2 * c);
                float mLow = dmin * KQuantScales.min(scales8, scales4, 2 * c);
                float dHigh = d * KQuantScales.scale(scales8, scales4, 2 * c + 1);
                float mHigh = dmin * KQuantScales.min(scales8, scales4, 2 * c + 1);
                int o = outOffset + b * BLOCK + 64 * c;
                for (int j = 0; j < 32; j++) {
                    int packed = data.get(BYTE, block + QS + 32 * c + j) & 0xFF;
                    int high = data.get(BYTE, block + QH + j) & 0xFF;
                    int qLow = (packed & 0x0F) | ((high >>> (2 * c)) & 1) << 4;
                    int qHigh = (packed >>> 4) | ((high >>> (2 * c + 1)) & 1) << 4;
                    out[o + j] = dLow * qLow - mLow;
                    out[o + 32 + j] = dHigh * qHigh - mHigh;
                }
            }
        }
    }

    /** Sub-block {@code s}'s quants {@code j .. j + LANES}, widened. */
    private FloatVector quants(long block, int s, int j) {
        ByteVector packed = loadBytes(data, block + QS + 32 * (s / 2) + j);
        ByteVector nibbles = s % 2 == 0 ? lowNibbles(packed) : highNibbles(packed);
        VectorMask<Byte> fifthBit = loadBytes(data, block + QH + j).and((byte) (1 << s)).compare(VectorOperators.NE, 0);
        return toFloats(nibbles.lanewise(VectorOperators.OR, (byte) 16, fifthBit));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block);
            float dmin = half(block + DMIN);
            long scales8 = KQuantScales.low8(data, block + SCALES);
            int scales4 = KQuantScales.high4(data, block + SCALES);
            for (int s = 0; s < 8; s++) {
                FloatVector scale = FloatVector.broadcast(FLOATS, d * KQuantScales.scale(scales8, scales4, s));
                FloatVector negMin = FloatVector.broadcast(FLOATS, -dmin * KQuantScales.min(scales8, scales4, s));
                int xi = xOffset + b * BLOCK + 32 * s;
                // the first vector of each sub-block and the rest go to different accumulators
                FloatVector w = quants(block, s, 0).fma(scale, negMin);
                acc0 = w.fma(FloatVector.fromArray(FLOATS, x, xi), acc0);
                for (int j = LANES; j < 32; j += LANES) {
                    w = quants(block, s, j).fma(scale, negMin);
                    acc1 = w.fma(FloatVector.fromArray(FLOATS, x, xi + j), acc1);
                }
            }
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
            float d = half(block);
            float dmin = half(block + DMIN);
            long scales8 = KQuantScales.low8(data, block + SCALES);
            int scales4 = KQuantScales.high4(data, block + SCALES);
            for (int s = 0; s < 8; s++) {
                FloatVector scale = FloatVector.broadcast(FLOATS, d * KQuantScales.scale(scales8, scales4, s));
                FloatVector negMin = FloatVector.broadcast(FLOATS, -dmin * KQuantScales.min(scales8, scales4, s));
                for (int j = 0; j < 32; j += LANES) {
                    FloatVector w = quants(block, s, j).fma(scale, negMin);
                    int xi = xOffset + b * BLOCK + 32 * s + j;
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
