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
 * NF4 ({@link LatheFormat.Kind#NF4}): per group of g values an f32 absmax, then g/2 bytes of
 * 4-bit codes (low nibbles: codes {@code 0..g/2-1}, high nibbles: {@code g/2..g-1}); value
 * {@code Nf4Codebook[code] * absmax}. Roofline at g = 64: 0.56 bytes and 2 FLOPs per value.
 *
 * <p>Kernel: the codes become float lane indices and select their code values from the 16-entry
 * table held in one (AVX-512) or two (AVX2) registers; the group sum is scaled by absmax once.
 *
 * <p>Double quantization ({@link LatheFormat#doubleQuant()}, QLoRA): the same kernels; only
 * {@link #absmax} differs, decoding a group's int8 absmax code against the table after the rows
 * ({@link #dequantizeAbsmax}). Compared with bitsandbytes ({@code compress_statistics=True}):
 * the same structure (subtract the mean of the absmax values, quantize the rest in blocks of 256
 * with one f32 scale each, one f32 offset per tensor), but bitsandbytes' 8-bit code is its
 * non-linear "dynamic" map while this is linear symmetric int8 ({@code -127..127}), and the codes
 * here are chosen against the dequantized absmax (bitsandbytes chooses them against the exact
 * one). The decoded absmax is clamped at 0. Error bound per group: {@code |absmax' - absmax| <=
 * scale / 2 = max |absmax - offset| / 254} over its block.
 */
final class Nf4Matrix extends LatheMatrix {
    private static final FloatVector TABLE_LOW;
    private static final FloatVector TABLE_HIGH;

    static {
        float[] padded = new float[2 * LANES];
        System.arraycopy(Nf4Codebook.values(), 0, padded, 0, 16);
        TABLE_LOW = FloatVector.fromArray(FLOATS, padded, 0);
        TABLE_HIGH = FloatVector.fromArray(FLOATS, padded, LANES);
    }

    private final int group;
    private final int half;
    private final int groupBytes;
    private final int groupsPerRow;
    private final int codesAt; // offset of a group's codes after its header (f32 absmax, or int8 code)
    private final boolean doubleQuant;
    private final long absmaxTable; // double quant: offset of the table (f32 offset, f32 scale per block)

    Nf4Matrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
        this.group = format.groupSize();
        this.half = group / 2;
        this.groupBytes = format.groupBytes();
        this.groupsPerRow = cols / group;
        this.codesAt = format.groupHeaderBytes();
        this.doubleQuant = format.doubleQuant();
        this.absmaxTable = (long) rows * rowBytes;
    }

    /** Double quant: a group's absmax from its int8 code, the tensor's offset and its block's scale. */
    static float dequantizeAbsmax(float offset, float blockScale, byte code) {
        return Math.max(0f, offset + blockScale * code);
    }

    /** The absmax of group {@code g} of {@code row}, whose header starts at {@code block}. */
    private float absmax(int row, int g, long block) {
        if (!doubleQuant) {
            return data.get(FLOAT, block);
        }
        long groupIndex = (long) row * groupsPerRow + g;
        float blockScale = data.get(FLOAT, absmaxTable + 4 + 4 * (groupIndex / LatheFormat.DQ_BLOCK));
        return dequantizeAbsmax(data.get(FLOAT, absmaxTable), blockScale, data.get(BYTE, block));
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long block = rowOffset(row);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            float absmax = absmax(row, g, block);
            int o = outOffset + g * group;
            for (int i = 0; i < half; i++) {
                int packed = data.get(BYTE, block + codesAt + i) & 0xFF;
                out[o + i] = Nf4Codebook.value(packed & 0x0F) * absmax;
                out[o + half + i] = Nf4Codebook.value(packed >>> 4) * absmax;
            }
        }
    }

    /** The code values of {@code codes} (0..15 per byte lane). */
    private static FloatVector lookup(ByteVector codes) {
        return toFloats(codes).selectFrom(TABLE_LOW, TABLE_HIGH);
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = rowOffset(row);
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            FloatVector sum = FloatVector.zero(FLOATS);
            int xi = xOffset + g * group;
            for (int i = 0; i < half; i += LANES) {
                ByteVector packed = loadBytes(data, block + codesAt + i);
                sum = lookup(lowNibbles(packed)).fma(FloatVector.fromArray(FLOATS, x, xi + i), sum);
                sum = lookup(highNibbles(packed)).fma(FloatVector.fromArray(FLOATS, x, xi + half + i), sum);
            }
            acc = sum.fma(FloatVector.broadcast(FLOATS, absmax(row, g, block)), acc);
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
            float absmax = absmax(row, g, block);
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < half; i += LANES) {
                    ByteVector packed = loadBytes(data, block + codesAt + i);
                    FloatVector w = lookup(h == 0 ? lowNibbles(packed) : highNibbles(packed)).mul(absmax);
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

    /** Row {@code row}'s codes and absmax values, dequantized for double quant (see LatheEncoder.unpackNf4Row). */
    void unpackRow(int row, byte[] codes, float[] absmax) {
        long block = rowOffset(row);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            absmax[g] = absmax(row, g, block);
            for (int i = 0; i < half; i++) {
                int packed = data.get(BYTE, block + codesAt + i) & 0xFF;
                codes[g * group + i] = (byte) (packed & 0x0F);
                codes[g * group + half + i] = (byte) (packed >>> 4);
            }
        }
    }

    /** Writes one group: {@code absmax} and the {@code groupSize} codes {@code codes[codeOffset..]}. */
    static void packGroup(byte[] codes, int codeOffset, int groupSize, float absmax, MemorySegment dst, long dstOffset) {
        dst.set(FLOAT, dstOffset, absmax);
        packCodes(codes, codeOffset, groupSize, dst, dstOffset + 4);
    }

    /** Double quant: writes one group, its int8 absmax code and the {@code groupSize} codes {@code codes[codeOffset..]}. */
    static void packDoubleQuantGroup(byte[] codes, int codeOffset, int groupSize, byte absmaxCode, MemorySegment dst, long dstOffset) {
        dst.set(BYTE, dstOffset, absmaxCode);
        packCodes(codes, codeOffset, groupSize, dst, dstOffset + 1);
    }

    private static void packCodes(byte[] codes, int codeOffset, int groupSize, MemorySegment dst, long dstOffset) {
        int h = groupSize / 2;
        for (int i = 0; i < h; i++) {
            dst.set(BYTE, dstOffset + i, (byte) ((codes[codeOffset + i] & 0x0F) | (codes[codeOffset + h + i] << 4)));
        }
    }
}
