package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.highNibbles;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.lowNibbles;
import static dev.lathe.core.tensor.BlockLanes.shiftWithinShorts;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q6_K (ggml block_q6_K): super-blocks of 256 values, 210 bytes: {@code uint8 ql[128]} (low 4
 * bits), {@code uint8 qh[64]} (high 2 bits), {@code int8 scales[16]} (one per 16 values), then
 * {@code f16 d}. Each half h (values {@code 128h ..}) uses {@code ql[64h ..]}, {@code qh[32h ..]};
 * for l in 0..31 the four values {@code 128h + l + 32k}, k = 0..3, take their low bits from the
 * low nibble of {@code ql[64h + l]}, {@code ql[64h + 32 + l]}, then the high nibbles of the same
 * two bytes, and their high bits from bits {@code 2k, 2k+1} of {@code qh[32h + l]}. Value:
 * {@code d * scales[8h + l/16 + 2k] * (q - 32)}. Roofline: 0.8203 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: the 6-bit quants are assembled and re-centred in byte lanes, widened, multiplied
 * with x and scaled once per 16-value sub-block. Variants of {@code dot} (bench KernelThroughput,
 * one thread, in cache): (1) the four values of each ql/qh position unrolled: past C2's inlining
 * budget, vectors boxed (37 KB allocated per dot); (2) a loop over k with variable shift counts:
 * about 3.0 Gvalues/s; (3, this, also in {@code dot4}) a loop over the two ql byte groups, each
 * giving a low- and a high-nibble value, with qh shifted by a constant per step: about
 * 4.8 Gvalues/s. (1) is why these loops stay loops: C2 stops inlining Vector API calls once a
 * method's IR passes a node budget, and every vector op costs many nodes.
 */
final class Q6_KMatrix extends MappedMatrix {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 210;
    private static final int QH = 128;
    private static final int SCALES = 192;
    private static final int D = 208;
    private static final byte ZERO_POINT = 32;

    Q6_KMatrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q6_K;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block + D);
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int lowA = data.get(BYTE, block + 64 * h + l) & 0xFF;
                    int lowB = data.get(BYTE, block + 64 * h + 32 + l) & 0xFF;
                    int high = data.get(BYTE, block + QH + 32 * h + l) & 0xFF;
                    for (int k = 0; k < 4; k++) {
                        int lowBits = switch (k) {
                            case 0 -> lowA & 0x0F;
                            case 1 -> lowB & 0x0F;
                            case 2 -> lowA >>> 4;
                            default -> lowB >>> 4;
                        };
                        int q = lowBits | ((high >>> (2 * k)) & 3) << 4;
                        int scale = data.get(BYTE, block + SCALES + 8 * h + l / 16 + 2 * k);
                        out[outOffset + b * BLOCK + 128 * h + 32 * k + l] = d * scale * (q - 32);
                    }
                }
            }
        }
    }

    /** Signed quants {@code q - 32}, widened, from 4 low bits and 2 high bits already at bits 4, 5 (others masked here). */
    private static FloatVector sixBitAligned(ByteVector low4, ByteVector high2) {
        return toFloats(low4.or(high2.and((byte) 0x30)).sub(ZERO_POINT));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        for (int b = 0; b < blocksPerRow; b++, block += BLOCK_BYTES) {
            float d = half(block + D);
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l += LANES) {
                    ByteVector high = loadBytes(data, block + QH + 32 * h + l);
                    // kk = 0, 1: the bytes ql[64h + 32kk + l] hold values k = kk (low nibbles) and
                    // k = kk + 2 (high nibbles); qh is shifted by 2 per kk, so the constant shifts
                    // below pick bits 2kk, 2kk+1 (k = kk) and 2kk+4, 2kk+5 (k = kk + 2)
                    for (int kk = 0; kk < 2; kk++) {
                        ByteVector low = loadBytes(data, block + 64 * h + 32 * kk + l);
                        int xi = xOffset + b * BLOCK + 128 * h + 32 * kk + l;
                        long scale = block + SCALES + 8 * h + 2 * kk + l / 16;
                        FloatVector q0 = sixBitAligned(lowNibbles(low), shiftWithinShorts(high, VectorOperators.LSHL, 4));
                        FloatVector q2 = sixBitAligned(highNibbles(low), high);
                        acc0 = q0.mul(FloatVector.fromArray(FLOATS, x, xi))
                                .fma(FloatVector.broadcast(FLOATS, d * data.get(BYTE, scale)), acc0);
                        acc1 = q2.mul(FloatVector.fromArray(FLOATS, x, xi + 64))
                                .fma(FloatVector.broadcast(FLOATS, d * data.get(BYTE, scale + 4)), acc1);
                        high = shiftWithinShorts(high, VectorOperators.LSHR, 2);
                    }
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
            float d = half(block + D);
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l += LANES) {
                    ByteVector high = loadBytes(data, block + QH + 32 * h + l);
                    for (int kk = 0; kk < 2; kk++) { // as in dot: k = kk, then k = kk + 2
                        ByteVector low = loadBytes(data, block + 64 * h + 32 * kk + l);
                        for (int k = kk; k < 4; k += 2) {
                            FloatVector q = k < 2
                                    ? sixBitAligned(lowNibbles(low), shiftWithinShorts(high, VectorOperators.LSHL, 4))
                                    : sixBitAligned(highNibbles(low), high);
                            FloatVector w = q.mul(d * data.get(BYTE, block + SCALES + 8 * h + 2 * k + l / 16));
                            int xi = xOffset + b * BLOCK + 128 * h + 32 * k + l;
                            acc0 = w.fma(FloatVector.fromArray(FLOATS, x, xi), acc0);
                            acc1 = w.fma(FloatVector.fromArray(FLOATS, x, xi + xStride), acc1);
                            acc2 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 2 * xStride), acc2);
                            acc3 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 3 * xStride), acc3);
                        }
                        high = shiftWithinShorts(high, VectorOperators.LSHR, 2);
                    }
                }
            }
        }
        LaneSums.sum4(acc0, acc1, acc2, acc3, sums);
    }
}
