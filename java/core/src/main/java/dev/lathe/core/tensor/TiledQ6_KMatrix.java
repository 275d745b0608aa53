package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.loadShorts;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import dev.lathe.core.tensor.TiledNibbleMatrix.RoundedInputs;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q6_K in {@link RowTiledMatrix}'s tiles, multiplied in integers against inputs rounded to 8 bits
 * as for Q4_0 and Q4_K ({@link TiledNibbleMatrix#round}). A Q6_K super-block (256 values,
 * {@link Q6_KMatrix}) has an f16 scale {@code d} and a signed 8-bit scale {@code sc} per 16
 * values: value = {@code d * sc * (q - 32)}, q of 6 bits.
 *
 * <p>Product: per 32-value tile block, its two 16-value halves' integer sums
 * {@code S = sum of (q - 32) * x} give {@code total = sc_lo * S_lo + sc_hi * S_hi}, and
 * {@code acc = fma(float(total), d * step, acc)}. |total| is at most 32 * 32 * 128 * 127 < 2^24,
 * so it is exact in f32, and the decoded path for batches (values {@code sc * (q - 32)}, block
 * sums in f32) gets the same bits.
 *
 * <p>A tile block: {@code sc_lo} then {@code sc_hi} of each row (one byte each), then the low 4
 * bits of the 32 values in Q4_0's group order ({@link TiledNibbleMatrix}: group k, row i at bytes
 * 2i and 2i + 1, low nibbles columns 2k + p, high nibbles 2k + 16 + p), then the 2 high bits in 4
 * groups laid out the same way: group j's byte p of row i holds the high bits of columns
 * 4j + p, 4j + 16 + p, 4j + 2 + p, 4j + 18 + p at bits 0, 2, 4, 6. Zero-extended to 16-bit lanes,
 * each lines up with the nibble groups 2j and 2j + 1 lane for lane. The low nibbles are exactly
 * the block's first 16 values and the high ones its last 16, Q6_K's two scale groups, so the two
 * sums stay apart with no shuffling. 16-bit sums: 8 products per lane and half, each at most
 * 32 * 127: at most 32512.
 *
 * <p>Bytes: 26 per row and block plus 4 per row and super-block (d as f32 in
 * {@link SuperBlockScales}, as for Q4_K): 6.625 bits per value, against the file's 6.5625.
 */
final class TiledQ6_KMatrix extends RowTiledMatrix {
    private static final int SUB_BLOCKS = Q6_KMatrix.BLOCK / BLOCK;
    private static final int HEADER_BYTES = 2 * TILE_ROWS;
    private static final int NIBBLE_GROUPS = BLOCK / 4;
    private static final int HIGH_GROUPS = NIBBLE_GROUPS / 2;
    private static final int GROUP_BYTES = 2 * TILE_ROWS;
    private static final int NIBBLES = HEADER_BYTES;
    private static final int HIGH_BITS = NIBBLES + NIBBLE_GROUPS * GROUP_BYTES;
    static final int BLOCK_BYTES = HIGH_BITS + HIGH_GROUPS * GROUP_BYTES;
    private static final int QH = 128;
    private static final int SCALES = 192;
    private static final int D = 208;
    private static final VectorSpecies<Byte> GROUP = VectorSpecies.of(byte.class, VectorShape.forBitSize(GROUP_BYTES * Byte.SIZE));
    private static final VectorSpecies<Short> ROW_PAIRS = VectorSpecies.of(short.class, FLOATS.vectorShape());

    private final SuperBlockScales superScales; // vector 0: d

    TiledQ6_KMatrix(WeightMatrix source, Arena arena) {
        super(source, BLOCK_BYTES, true, arena);
        this.superScales = new SuperBlockScales(tiles.byteSize() / tileBytes, source.cols(), 1, arena);
    }

    @Override
    public long tiledBytes() {
        return super.tiledBytes() + superScales.byteSize();
    }

    @Override
    Inputs inputs(float[] x, int offset, int stride, int n) {
        return TiledNibbleMatrix.round(x, offset, stride, n, blocksPerRow, n < DECODE_MIN_INPUTS, false);
    }

    /**
     * NOTE: sub-block j (values 32j ..) of a super-block reads 32 consecutive bytes of ql (half j / 4,
     * its low nibbles for j % 4 < 2, else high; offset 32 for odd j % 4) and 32 of qh (bits
     * 2 * (j % 4)): two bulk copies per block. Reading each value's two bytes through the segment
     * re-laid a 141 MB Q6_K model at about 40 MB/s.
     */
    @Override
    void packBlock(MemorySegment from, long row, int b, long tileBlock, int tile, int lane) {
        long superBlock = row + (long) (b / SUB_BLOCKS) * Q6_KMatrix.BLOCK_BYTES;
        int sub = b % SUB_BLOCKS;
        if (sub == 0) {
            superScales.set(tile, b, 0, lane, Float.float16ToFloat(from.get(PackedMatrix.HALF, superBlock + D)));
        }
        tiles.set(PackedMatrix.BYTE, tileBlock + lane, from.get(PackedMatrix.BYTE, superBlock + SCALES + 2 * sub));
        tiles.set(PackedMatrix.BYTE, tileBlock + TILE_ROWS + lane, from.get(PackedMatrix.BYTE, superBlock + SCALES + 2 * sub + 1));
        int half = sub / 4;
        int k = sub % 4;
        byte[] raw = new byte[2 * BLOCK]; // ql bytes, then qh bytes
        MemorySegment.copy(from, PackedMatrix.BYTE, superBlock + 64L * half + 32L * (k % 2), raw, 0, BLOCK);
        MemorySegment.copy(from, PackedMatrix.BYTE, superBlock + QH + 32L * half, raw, BLOCK, BLOCK);
        int[] q = new int[BLOCK]; // the block's 6-bit values, 0..63
        for (int c = 0; c < BLOCK; c++) {
            int ql = raw[c] & 0xFF;
            q[c] = (k < 2 ? ql & 0x0F : ql >>> 4) | ((raw[BLOCK + c] & 0xFF) >>> (2 * k) & 3) << 4;
        }
        for (int g = 0; g < NIBBLE_GROUPS; g++) {
            int packed = 0;
            for (int p = 0; p < 2; p++) {
                packed |= ((q[2 * g + p] & 0x0F) | (q[2 * g + 16 + p] & 0x0F) << 4) << (8 * p);
            }
            tiles.set(PackedMatrix.HALF, tileBlock + NIBBLES + (long) g * GROUP_BYTES + 2L * lane, (short) packed);
        }
        for (int j = 0; j < HIGH_GROUPS; j++) {
            int packed = 0;
            for (int p = 0; p < 2; p++) {
                int bits = q[4 * j + p] >>> 4 | (q[4 * j + 16 + p] >>> 4) << 2
                        | (q[4 * j + 2 + p] >>> 4) << 4 | (q[4 * j + 18 + p] >>> 4) << 6;
                packed |= bits << (8 * p);
            }
            tiles.set(PackedMatrix.HALF, tileBlock + HIGH_BITS + (long) j * GROUP_BYTES + 2L * lane, (short) packed);
        }
    }

    /** {@code d} of block {@code block}'s super-block, per row (the sub-block scales are in the sums). */
    @Override
    FloatVector scales(long tileBlock, int tile, int block) {
        return FloatVector.fromMemorySegment(FLOATS, superScales.segment, superScales.offset(tile, block, 0), ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at) {
        for (int k = 0; k < blocks; k++) {
            FloatVector.fromMemorySegment(FLOATS, superScales.segment, superScales.offset(tile, block + k, 0), ByteOrder.LITTLE_ENDIAN)
                    .intoArray(out, at + k * TILE_ROWS);
        }
    }

    /*
     * NOTE (C2): as in TiledNibbleMatrix, the inner loops are written out with no vector-passing
     * helpers of ours, and a group of four tiles is two calls of the two-tile loop (four tiles'
     * worth of Q6_K's extra bit operations in one method risked C2's inlining budget).
     */

    @Override
    void tileDot(long tile, Inputs inputs, int t, float[] lanes, int at) {
        RoundedInputs in = (RoundedInputs) inputs;
        short[] scratch = in.shortScratch;
        int tileIndex = (int) (tile / tileBytes);
        java.util.Arrays.fill(lanes, at, at + TILE_ROWS, 0f);
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        VectorOperators.Conversion<Byte, Short> widen = VectorOperators.ZERO_EXTEND_B2S;
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, tile += BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector lo = ShortVector.zero(ROW_PAIRS);
            ShortVector hi = lo;
            for (int j = 0; j < HIGH_GROUPS; j++) {
                ShortVector h = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles,
                        tile + HIGH_BITS + (long) j * GROUP_BYTES, le).convertShape(widen, ROW_PAIRS, 0);
                // nibble group 2j: high bits at 0-1 (first half) and 2-3 (second half)
                ShortVector xl = IntVector.broadcast(INTS, in.pairs[pair + 2 * j]).reinterpretAsShorts();
                ShortVector xh = IntVector.broadcast(INTS, in.pairs[pair + NIBBLE_GROUPS + 2 * j]).reinterpretAsShorts();
                ShortVector w = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles,
                        tile + NIBBLES + (long) (2 * j) * GROUP_BYTES, le).convertShape(widen, ROW_PAIRS, 0);
                lo = lo.add(w.and((short) 0x0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32).mul(xl));
                hi = hi.add(w.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHL, 2).and((short) 0x30))
                        .sub((short) 32).mul(xh));
                // nibble group 2j + 1: high bits at 4-5 and 6-7
                xl = IntVector.broadcast(INTS, in.pairs[pair + 2 * j + 1]).reinterpretAsShorts();
                xh = IntVector.broadcast(INTS, in.pairs[pair + NIBBLE_GROUPS + 2 * j + 1]).reinterpretAsShorts();
                w = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles,
                        tile + NIBBLES + (long) (2 * j + 1) * GROUP_BYTES, le).convertShape(widen, ROW_PAIRS, 0);
                lo = lo.add(w.and((short) 0x0F).or(h.and((short) 0x30)).sub((short) 32).mul(xl));
                hi = hi.add(w.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2).and((short) 0x30))
                        .sub((short) 32).mul(xh));
            }
            lo.intoArray(scratch, 0);
            hi.intoArray(scratch, 2 * TILE_ROWS);
            scaleTilesInto(tile, tileIndex, 1, in, t, b, lanes, at);
        }
    }

    @Override
    void groupDot(long tile, Inputs inputs, int t, float[] lanes) {
        java.util.Arrays.fill(lanes, 0, ROW_GROUP, 0f);
        pairDot(tile, (RoundedInputs) inputs, t, lanes, 0);
        pairDot(tile + 2 * tileBytes, (RoundedInputs) inputs, t, lanes, 2 * TILE_ROWS);
    }

    /** {@link #tileDot} for the two tiles from {@code tile} at once (two weight streams), into {@code lanes[at..at + 2 * TILE_ROWS)}. */
    private void pairDot(long tile, RoundedInputs in, int t, float[] lanes, int at) {
        short[] scratch = in.shortScratch;
        int tileIndex = (int) (tile / tileBytes);
        long t0 = tile;
        long t1 = tile + tileBytes;
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        VectorOperators.Conversion<Byte, Short> widen = VectorOperators.ZERO_EXTEND_B2S;
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, t0 += BLOCK_BYTES, t1 += BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector lo0 = ShortVector.zero(ROW_PAIRS);
            ShortVector hi0 = lo0;
            ShortVector lo1 = lo0;
            ShortVector hi1 = lo0;
            for (int j = 0; j < HIGH_GROUPS; j++) {
                long high = HIGH_BITS + (long) j * GROUP_BYTES;
                ShortVector h0 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t0 + high, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector h1 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t1 + high, le).convertShape(widen, ROW_PAIRS, 0);
                long g = NIBBLES + (long) (2 * j) * GROUP_BYTES;
                ShortVector xl = IntVector.broadcast(INTS, in.pairs[pair + 2 * j]).reinterpretAsShorts();
                ShortVector xh = IntVector.broadcast(INTS, in.pairs[pair + NIBBLE_GROUPS + 2 * j]).reinterpretAsShorts();
                ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t0 + g, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t1 + g, le).convertShape(widen, ROW_PAIRS, 0);
                lo0 = lo0.add(w0.and((short) 0x0F).or(h0.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32).mul(xl));
                hi0 = hi0.add(w0.lanewise(VectorOperators.LSHR, 4).or(h0.lanewise(VectorOperators.LSHL, 2).and((short) 0x30))
                        .sub((short) 32).mul(xh));
                lo1 = lo1.add(w1.and((short) 0x0F).or(h1.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32).mul(xl));
                hi1 = hi1.add(w1.lanewise(VectorOperators.LSHR, 4).or(h1.lanewise(VectorOperators.LSHL, 2).and((short) 0x30))
                        .sub((short) 32).mul(xh));
                g += GROUP_BYTES;
                xl = IntVector.broadcast(INTS, in.pairs[pair + 2 * j + 1]).reinterpretAsShorts();
                xh = IntVector.broadcast(INTS, in.pairs[pair + NIBBLE_GROUPS + 2 * j + 1]).reinterpretAsShorts();
                w0 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t0 + g, le).convertShape(widen, ROW_PAIRS, 0);
                w1 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t1 + g, le).convertShape(widen, ROW_PAIRS, 0);
                lo0 = lo0.add(w0.and((short) 0x0F).or(h0.and((short) 0x30)).sub((short) 32).mul(xl));
                hi0 = hi0.add(w0.lanewise(VectorOperators.LSHR, 4).or(h0.lanewise(VectorOperators.LSHR, 2).and((short) 0x30))
                        .sub((short) 32).mul(xh));
                lo1 = lo1.add(w1.and((short) 0x0F).or(h1.and((short) 0x30)).sub((short) 32).mul(xl));
                hi1 = hi1.add(w1.lanewise(VectorOperators.LSHR, 4).or(h1.lanewise(VectorOperators.LSHR, 2).and((short) 0x30))
                        .sub((short) 32).mul(xh));
            }
            lo0.intoArray(scratch, 0);
            hi0.intoArray(scratch, 2 * TILE_ROWS);
            lo1.intoArray(scratch, 4 * TILE_ROWS);
            hi1.intoArray(scratch, 6 * TILE_ROWS);
            scaleTilesInto(t0, tileIndex, 2, in, t, b, lanes, at);
        }
    }

    /**
     * For {@code count} tiles from {@code tile} (block b at {@code tileBlock}), their two halves'
     * 16-bit sums in {@code in.shortScratch} (tile g: first half at {@code 4g * TILE_ROWS}, second
     * at {@code (4g + 2) * TILE_ROWS}, two lanes per row), added per row, times the halves' scales:
     * the block's exact integer product, scaled by {@code d * step} into {@code lanes[at + g * TILE_ROWS..]}.
     */
    private void scaleTilesInto(long tileBlock, int tile, int count, RoundedInputs in, int t, int b, float[] lanes, int at) {
        float step = in.blockScales[t * blocksPerRow + b];
        for (int g = 0; g < count; g++, tileBlock += tileBytes, at += TILE_ROWS) {
            IntVector first = ShortVector.fromArray(ROW_PAIRS, in.shortScratch, 4 * g * TILE_ROWS).reinterpretAsInts();
            IntVector second = ShortVector.fromArray(ROW_PAIRS, in.shortScratch, (4 * g + 2) * TILE_ROWS).reinterpretAsInts();
            IntVector firstSum = first.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                    .add(first.lanewise(VectorOperators.ASHR, 16));
            IntVector secondSum = second.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                    .add(second.lanewise(VectorOperators.ASHR, 16));
            IntVector firstScale = (IntVector) loadBytes(tiles, tileBlock).convertShape(VectorOperators.B2I, INTS, 0);
            IntVector secondScale = (IntVector) loadBytes(tiles, tileBlock + TILE_ROWS).convertShape(VectorOperators.B2I, INTS, 0);
            IntVector total = firstSum.mul(firstScale).add(secondSum.mul(secondScale));
            FloatVector d = FloatVector.fromMemorySegment(FLOATS, superScales.segment, superScales.offset(tile + g, b, 0), ByteOrder.LITTLE_ENDIAN);
            ((FloatVector) total.convert(VectorOperators.I2F, 0)).fma(d.mul(step), FloatVector.fromArray(FLOATS, lanes, at))
                    .intoArray(lanes, at);
        }
    }

    /** Values {@code sc * (q - 32)}: small integers, exact in f32 (see the class comment). */
    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        for (int b = 0, v = at; b < blocks; b++, tile += BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            FloatVector firstScale = toFloats(loadBytes(tiles, tile));
            FloatVector secondScale = toFloats(loadBytes(tiles, tile + TILE_ROWS));
            for (int j = 0; j < HIGH_GROUPS; j++) {
                // lane i: row i's bytes p = 0 (bits 0-7) and 1 (bits 8-15); higher bits are sign copies
                IntVector high = (IntVector) loadShorts(tiles, tile + HIGH_BITS + (long) j * GROUP_BYTES)
                        .convertShape(VectorOperators.S2I, INTS, 0);
                for (int odd = 0; odd < 2; odd++) {
                    int k = 2 * j + odd;
                    IntVector low = (IntVector) loadShorts(tiles, tile + NIBBLES + (long) k * GROUP_BYTES)
                            .convertShape(VectorOperators.S2I, INTS, 0);
                    for (int p = 0; p < 2; p++) {
                        IntVector bits = high.lanewise(VectorOperators.LSHR, 8 * p + 4 * odd);
                        IntVector first = low.lanewise(VectorOperators.LSHR, 8 * p).and(0x0F)
                                .or(bits.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        IntVector second = low.lanewise(VectorOperators.LSHR, 8 * p + 4).and(0x0F)
                                .or(bits.lanewise(VectorOperators.LSHR, 2).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        ((FloatVector) first.convert(VectorOperators.I2F, 0)).mul(firstScale)
                                .intoArray(values, v + (2 * k + p) * TILE_ROWS);
                        ((FloatVector) second.convert(VectorOperators.I2F, 0)).mul(secondScale)
                                .intoArray(values, v + (2 * k + 16 + p) * TILE_ROWS);
                    }
                }
            }
        }
    }
}
