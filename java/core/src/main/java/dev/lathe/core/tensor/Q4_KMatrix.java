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
 * Q4_K (ggml block_q4_K): super-blocks of 256 values, 144 bytes: {@code f16 d}, {@code f16 dmin},
 * {@code uint8 scales[12]} (eight 6-bit scales and mins, {@link KQuantScales}), then
 * {@code uint8 qs[128]} in four chunks of 32 bytes; chunk c holds values {@code 64c + j} in its
 * low nibbles (sub-block 2c) and {@code 64c + 32 + j} in its high nibbles (sub-block 2c + 1).
 * Value: {@code d * scale[s] * q - dmin * min[s]}. Roofline: 0.5625 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: the weights are formed in registers, {@code w = q * (d*scale) + (-dmin*min)} (one FMA
 * per vector), then FMA'd with x into two accumulators (low and high nibbles). Variants: (1)
 * {@code d*scale * sum(q x) - dmin*min * sum(x)} with both sums per sub-block: 5.5 Gvalues/s;
 * (2, this) 5.9 Gvalues/s (bench KernelThroughput, one thread, in cache, 3 runs each).
 */
final class Q4_KMatrix extends MappedMatrix {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 144;
    private static final int DMIN = 2;
    private static final int SCALES = 4;
    private static final int QS = 16;

    Q4_KMatrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_K;
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
                    out[o + j] = dLow * (packed & 0x0F) - mLow;
                    out[o + 32 + j] = dHigh * (packed >>> 4) - mHigh;
                }
            }
        }
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
            for (int c = 0; c < 4; c++) {
                FloatVector scaleLow = FloatVector.broadcast(FLOATS, d * KQuantScales.scale(scales8, scales4, 2 * c));
                FloatVector negMinLow = FloatVector.broadcast(FLOATS, -dmin * KQuantScales.min(scales8, scales4, 2 * c));
                FloatVector scaleHigh = FloatVector.broadcast(FLOATS, d * KQuantScales.scale(scales8, scales4, 2 * c + 1));
                FloatVector negMinHigh = FloatVector.broadcast(FLOATS, -dmin * KQuantScales.min(scales8, scales4, 2 * c + 1));
                int xi = xOffset + b * BLOCK + 64 * c;
                for (int j = 0; j < 32; j += LANES) {
                    ByteVector packed = loadBytes(data, block + QS + 32 * c + j);
                    FloatVector wLow = toFloats(lowNibbles(packed)).fma(scaleLow, negMinLow);
                    FloatVector wHigh = toFloats(highNibbles(packed)).fma(scaleHigh, negMinHigh);
                    acc0 = wLow.fma(FloatVector.fromArray(FLOATS, x, xi + j), acc0);
                    acc1 = wHigh.fma(FloatVector.fromArray(FLOATS, x, xi + 32 + j), acc1);
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
            for (int s = 0; s < 8; s++) { // sub-block s: chunk s / 2, low nibbles when s is even
                FloatVector scale = FloatVector.broadcast(FLOATS, d * KQuantScales.scale(scales8, scales4, s));
                FloatVector negMin = FloatVector.broadcast(FLOATS, -dmin * KQuantScales.min(scales8, scales4, s));
                for (int j = 0; j < 32; j += LANES) {
                    ByteVector packed = loadBytes(data, block + QS + 32 * (s / 2) + j);
                    ByteVector q = s % 2 == 0 ? lowNibbles(packed) : highNibbles(packed);
                    FloatVector w = toFloats(q).fma(scale, negMin);
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
