package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.bitMask;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.shiftWithinShorts;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Group-wise INT2 and INT3 ({@link LatheFormat.Kind#INT_GROUP} with 2 or 3 bits), packed densely
 * in bit planes so a level costs its bits, not a nibble. Same model as {@link IntGroupMatrix}:
 * value {@code scale * (q - zero)} with an f16 scale and a uint8 zero point per group of g.
 *
 * <p>A row is its levels in chunks of {@link #CHUNK} = 64, then its group headers:
 * <pre>
 *   chunk c (16 bytes, INT3: 24):
 *     bytes 0..15  2-bit plane: byte i holds levels i, 16+i, 32+i, 48+i of the chunk in
 *                  bits 0-1, 2-3, 4-5, 6-7
 *     bytes 16..23 INT3 only, the third bit: a little-endian 64-bit word, bit k = bit 2 of level k
 *   then per group: f16 scale, uint8 zero   (3 bytes)
 * </pre>
 * so a shift by {@code 2s} and a mask give 16 consecutive levels ({@code 16s..16s+15}) in byte
 * lanes, and INT3's third bit is a lane mask, as in the Q5 formats. {@code cols} must be a
 * multiple of 64 as well as of g (every Llama-family width is). Bits per weight: INT2-g32 2.75,
 * INT3-g32 3.75, INT2-g128 2.19, INT3-g128 3.19.
 *
 * <p>Kernel: per 16 levels one shift, one mask (INT3: one masked OR), the zero point subtracted
 * in byte lanes, widened and multiplied with x into a group sum scaled once per group, as
 * {@link IntGroupMatrix}'s.
 */
final class LowBitGroupMatrix extends LatheMatrix {
    /** Levels per chunk: 16 bytes of 2-bit plane. */
    static final int CHUNK = 64;
    private static final int PLANE_BYTES = 16;
    private static final int HIGH_BITS = 16; // offset of INT3's third-bit word in a chunk
    private static final int HEADER_BYTES = 3;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final boolean threeBits;
    private final int group;
    private final int groupsPerRow;
    private final int chunksPerRow;
    private final int chunkBytes;
    private final long headersAt; // offset of the group headers within a row

    LowBitGroupMatrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
        this.threeBits = format.bits() == 3;
        this.group = format.groupSize();
        this.groupsPerRow = cols / group;
        this.chunksPerRow = cols / CHUNK;
        this.chunkBytes = chunkBytes(format.bits());
        this.headersAt = (long) chunksPerRow * chunkBytes;
    }

    /** Bytes of one chunk of 64 levels at {@code bits} (2 or 3). */
    static int chunkBytes(int bits) {
        return bits == 3 ? PLANE_BYTES + 8 : PLANE_BYTES;
    }

    /** Bytes of a row of {@code cols} values ({@code cols} a multiple of 64 and of the group size). */
    static long rowBytes(int bits, int groupSize, long cols) {
        return cols / CHUNK * chunkBytes(bits) + cols / groupSize * HEADER_BYTES;
    }

    private float scale(long row, int g) {
        return half(row + headersAt + (long) g * HEADER_BYTES);
    }

    private byte zero(long row, int g) {
        return data.get(BYTE, row + headersAt + (long) g * HEADER_BYTES + 2);
    }

    /** Level {@code i} (0..63) of the chunk at {@code chunk}, scalar: the reference decoding. */
    private int level(long chunk, int i) {
        int low = (data.get(BYTE, chunk + (i & 15)) >>> (2 * (i >>> 4))) & 3;
        if (!threeBits) {
            return low;
        }
        int high = (data.get(BYTE, chunk + HIGH_BITS + (i >>> 3)) >>> (i & 7)) & 1;
        return low | high << 2;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long start = rowOffset(row);
        for (int i = 0; i < cols; i++) {
            int g = i / group;
            int q = level(start + (long) (i / CHUNK) * chunkBytes, i % CHUNK);
            out[outOffset + i] = scale(start, g) * (q - (zero(start, g) & 0xFF));
        }
    }

    /**
     * Levels {@code 16 * segment + j} to {@code + LANES - 1} of a chunk, minus the zero point,
     * in byte lanes. {@code packed} is the plane's bytes {@code j..j + LANES - 1}.
     */
    private ByteVector levels(ByteVector packed, long highBits, int segment, int j, byte zero) {
        ByteVector q = (segment == 0 ? packed : shiftWithinShorts(packed, VectorOperators.LSHR, 2 * segment)).and((byte) 3);
        if (threeBits) {
            q = q.lanewise(VectorOperators.OR, (byte) 4, bitMask(highBits >>> (16 * segment + j)));
        }
        return q.sub(zero);
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long start = rowOffset(row);
        FloatVector acc = FloatVector.zero(FLOATS);
        FloatVector qx = FloatVector.zero(FLOATS);
        int g = 0;
        int filled = 0; // levels of group g summed into qx so far
        byte zero = zero(start, 0);
        long chunk = start;
        for (int c = 0; c < chunksPerRow; c++, chunk += chunkBytes) {
            long highBits = threeBits ? data.get(LONG, chunk + HIGH_BITS) : 0;
            int xc = xOffset + c * CHUNK;
            for (int segment = 0; segment < 4; segment++) {
                for (int j = 0; j < 16; j += LANES) {
                    ByteVector q = levels(loadBytes(data, chunk + j), highBits, segment, j, zero);
                    qx = toFloats(q).fma(FloatVector.fromArray(FLOATS, x, xc + 16 * segment + j), qx);
                }
                filled += 16;
                if (filled == group) {
                    acc = qx.fma(FloatVector.broadcast(FLOATS, scale(start, g)), acc);
                    qx = FloatVector.zero(FLOATS);
                    filled = 0;
                    if (++g < groupsPerRow) {
                        zero = zero(start, g);
                    }
                }
            }
        }
        return LaneSums.sum(acc);
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long start = rowOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        long chunk = start;
        int g = 0;
        int filled = 0; // levels of group g passed so far
        byte zero = zero(start, 0);
        float scale = scale(start, 0);
        for (int c = 0; c < chunksPerRow; c++, chunk += chunkBytes) {
            long highBits = threeBits ? data.get(LONG, chunk + HIGH_BITS) : 0;
            for (int segment = 0; segment < 4; segment++) {
                if (filled == group) { // NOTE: counters, not (c * 64 + 16 * segment) / group: no division per segment
                    filled = 0;
                    g++;
                    zero = zero(start, g);
                    scale = scale(start, g);
                }
                filled += 16;
                for (int j = 0; j < 16; j += LANES) {
                    FloatVector w = toFloats(levels(loadBytes(data, chunk + j), highBits, segment, j, zero)).mul(scale);
                    int xi = xOffset + c * CHUNK + 16 * segment + j;
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
        long start = rowOffset(row);
        int maxLevel = (1 << format.bits()) - 1;
        for (int g = 0; g < groupsPerRow; g++) {
            grids[g] = new LatheEncoder.Grid(scale(start, g), zero(start, g) & 0xFF, maxLevel);
        }
        for (int i = 0; i < cols; i++) {
            levels[i] = (byte) level(start + (long) (i / CHUNK) * chunkBytes, i % CHUNK);
        }
    }

    /**
     * Writes one row of {@code format} (2 or 3 bits) at {@code dst[dstOffset..]}: the levels
     * {@code levels[levelOffset, levelOffset + cols)} (each below {@code 2^bits}) and one grid per
     * group.
     */
    static void packRow(LatheFormat format, byte[] levels, int levelOffset, LatheEncoder.Grid[] grids, int cols,
                        MemorySegment dst, long dstOffset) {
        int bits = format.bits();
        int chunkBytes = chunkBytes(bits);
        for (int c = 0; c < cols / CHUNK; c++) {
            long chunk = dstOffset + (long) c * chunkBytes;
            long highBits = 0;
            for (int i = 0; i < PLANE_BYTES; i++) {
                int packed = 0;
                for (int segment = 0; segment < 4; segment++) {
                    packed |= (levels[levelOffset + c * CHUNK + 16 * segment + i] & 3) << (2 * segment);
                }
                dst.set(BYTE, chunk + i, (byte) packed);
            }
            if (bits == 3) {
                for (int k = 0; k < CHUNK; k++) {
                    highBits |= (long) ((levels[levelOffset + c * CHUNK + k] >>> 2) & 1) << k;
                }
                dst.set(LONG, chunk + HIGH_BITS, highBits);
            }
        }
        long headers = dstOffset + (long) (cols / CHUNK) * chunkBytes;
        for (int g = 0; g < cols / format.groupSize(); g++) {
            dst.set(HALF, headers + (long) g * HEADER_BYTES, Float.floatToFloat16(grids[g].scale()));
            dst.set(BYTE, headers + (long) g * HEADER_BYTES + 2, (byte) grids[g].zero());
        }
    }
}
