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
 * Group-wise INT4 (and INT3/INT2 in the same container), the GPTQ / AWQ model
 * ({@link LatheFormat.Kind#INT_GROUP}): per group of g values an f16 scale, a uint8 zero point,
 * then g/2 bytes whose low nibbles are levels {@code 0..g/2-1} and high nibbles levels
 * {@code g/2..g-1}; value {@code scale * (q - zero)}. Roofline at g = 128: 0.52 bytes and
 * 2 FLOPs per value.
 *
 * <p>Kernel: the zero point is subtracted in byte lanes ({@code q - zero} fits a signed byte),
 * the levels widened and multiplied with x into a group sum scaled once per group. Variants:
 * (1) {@code scale * sum(q x) - scale * zero * sum(x)} with two sums per group (as Q4_K); (2, this)
 * the byte-lane subtraction, one sum: about a third fewer vector ops per group.
 */
final class IntGroupMatrix extends LatheMatrix {
    private static final int SCALE = 0;
    private static final int ZERO = 2;
    private static final int QS = 3;

    private final int group;
    private final int half;
    private final int groupBytes;
    private final int groupsPerRow;

    IntGroupMatrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
        this.group = format.groupSize();
        this.half = group / 2;
        this.groupBytes = format.groupBytes();
        this.groupsPerRow = cols / group;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            float scale = half(block + SCALE);
            int zero = data.get(BYTE, block + ZERO) & 0xFF;
            int o = outOffset + g * group;
            for (int i = 0; i < half; i++) {
                int packed = data.get(BYTE, block + QS + i) & 0xFF;
                out[o + i] = scale * ((packed & 0x0F) - zero);
                out[o + half + i] = scale * ((packed >>> 4) - zero);
            }
        }
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            FloatVector qx = FloatVector.zero(FLOATS);
            byte zero = data.get(BYTE, block + ZERO);
            int xi = xOffset + g * group;
            for (int i = 0; i < half; i += LANES) {
                ByteVector packed = loadBytes(data, block + QS + i);
                qx = toFloats(lowNibbles(packed).sub(zero)).fma(FloatVector.fromArray(FLOATS, x, xi + i), qx);
                qx = toFloats(highNibbles(packed).sub(zero)).fma(FloatVector.fromArray(FLOATS, x, xi + half + i), qx);
            }
            acc = qx.fma(FloatVector.broadcast(FLOATS, half(block + SCALE)), acc);
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
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            float scale = half(block + SCALE);
            byte zero = data.get(BYTE, block + ZERO);
            for (int h = 0; h < 2; h++) { // low nibbles: values 0..g/2-1, high: g/2..g-1
                for (int i = 0; i < half; i += LANES) {
                    ByteVector packed = loadBytes(data, block + QS + i);
                    ByteVector q = h == 0 ? lowNibbles(packed) : highNibbles(packed);
                    FloatVector w = toFloats(q.sub(zero)).mul(scale);
                    int xi = xOffset + g * group + h * half + i;
                    acc0 = w.fma(FloatVector.fromArray(FLOATS, x, xi), acc0);
                    acc1 = w.fma(FloatVector.fromArray(FLOATS, x, xi + xStride), acc1);
                    acc2 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 2 * xStride), acc2);
                    acc3 = w.fma(FloatVector.fromArray(FLOATS, x, xi + 3 * xStride), acc3);
                }
            }
        }
        LaneSums.sum4(acc0, acc1, acc2, acc3, sums);
    }

    /** Row {@code row}'s levels and grids (see LatheEncoder.unpackIntGroupRow). */
    void unpackRow(int row, byte[] levels, LatheEncoder.Grid[] grids) {
        long block = rowOffset(row);
        int maxLevel = (1 << format.bits()) - 1;
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            grids[g] = new LatheEncoder.Grid(half(block + SCALE), data.get(BYTE, block + ZERO) & 0xFF,
                    maxLevel);
            for (int i = 0; i < half; i++) {
                int packed = data.get(BYTE, block + QS + i) & 0xFF;
                levels[g * group + i] = (byte) (packed & 0x0F);
                levels[g * group + half + i] = (byte) (packed >>> 4);
            }
        }
    }

    /**
     * Writes one group: {@code scale} (stored as f16), {@code zero}, and the {@code groupSize}
     * levels {@code levels[levelOffset..]} (each {@code 0..15}) at {@code dst[dstOffset..]}.
     */
    static void packGroup(byte[] levels, int levelOffset, int groupSize, float scale, int zero,
                          MemorySegment dst, long dstOffset) {
        dst.set(HALF, dstOffset + SCALE, Float.floatToFloat16(scale));
        dst.set(BYTE, dstOffset + ZERO, (byte) zero);
        int h = groupSize / 2;
        for (int i = 0; i < h; i++) {
            dst.set(BYTE, dstOffset + QS + i, (byte) ((levels[levelOffset + i] & 0x0F) | (levels[levelOffset + h + i] << 4)));
        }
    }
}
