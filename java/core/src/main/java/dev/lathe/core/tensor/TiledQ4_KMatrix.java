package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.loadShorts;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q4_K in {@link TiledNibbleMatrix}'s tiles. A Q4_K super-block (256 values) has two f16 scales
 * {@code d} and {@code dmin}, and per 32-value sub-block a 6-bit scale {@code sc} and min
 * {@code m}: value = {@code d * sc * nibble - dmin * m}. Each sub-block is one tile block: its
 * header holds the rows' {@code sc} (one byte each) then their {@code m}, and its nibbles are
 * re-packed into Q4_0's order. The super-blocks' {@code d} and {@code dmin} (widened to f32, per
 * tile and super-block) sit in a second, small segment ({@link SuperBlockScales}). {@code d * sc}
 * and {@code dmin * m} are exact in f32 (11 by 6 bits), the products ggml computes.
 *
 * <p>Bytes: 288 per tile block plus 128 per tile super-block (16 rows), against the file's 144
 * per row super-block: 3.5% more. NOTE: f32, not the file's f16, for {@code d} and {@code dmin}:
 * one load instead of a widening of eight operations, twice per block and tile (decode measured
 * 80-104 vs 84-89 tok/s on the 200M Q4_K model: within the noise, kept for the fewer operations).
 *
 * <p>Q5_K is the same with a fifth bit per value (q in 0..31; d, dmin, the 6-bit scales and mins
 * and the nibbles' layout are Q4_K's, at other offsets of a 176-byte super-block). Its tile blocks
 * carry the fifth bits after the nibbles in {@link #FIFTH_GROUPS} groups laid out like them: group
 * j's byte p of row i holds, at bits 2m and 2m + 1, the fifth bits of nibble group 4j + m's
 * columns 2k + p and 2k + 16 + p (k = 4j + m). With q up to 31 a lane's 16 products would not fit
 * 16 bits, so the lanes sum {@code (q - 16) * x} (at most 16 * 16 * 127 = 32512) and the block
 * adds {@code 16 * sum of x} back: the class's offset is -16. Q5_K is this class, not another, so
 * the shared kernels' calls of {@link #scales} keep seeing two receiver types (C2 inlines up to
 * two; see RowTiledMatrix's NOTE on boxing).
 */
final class TiledQ4_KMatrix extends TiledNibbleMatrix {
    private static final int SUB_BLOCKS = Q4_KMatrix.BLOCK / BLOCK;
    private static final int DMIN = 2;
    private static final int SCALES = 4;
    private static final int Q4_K_QS = 16;
    private static final int Q5_K_QH = 16;
    private static final int Q5_K_QS = 48;
    /** Q5_K: groups of fifth bits after the nibbles, each covering four nibble groups. */
    private static final int FIFTH_GROUPS = GROUPS / 4;
    private static final int FIFTH_BITS = BLOCK_BYTES;
    private static final int Q5_K_BLOCK_BYTES = BLOCK_BYTES + FIFTH_GROUPS * GROUP_BYTES;
    private static final int Q5_K_OFFSET = 16;

    private final SuperBlockScales superScales; // vector 0: d, vector 1: dmin
    /** Q5_K rather than Q4_K. */
    private final boolean fifthBit;
    private final long superBlockBytes;
    private final long qs;

    TiledQ4_KMatrix(WeightMatrix source, Arena arena) {
        super(source, arena, fifthBit(source) ? -Q5_K_OFFSET : 0, true, fifthBit(source) ? Q5_K_BLOCK_BYTES : BLOCK_BYTES);
        this.fifthBit = fifthBit(source);
        this.superBlockBytes = fifthBit ? Q5_KMatrix.BLOCK_BYTES : Q4_KMatrix.BLOCK_BYTES;
        this.qs = fifthBit ? Q5_K_QS : Q4_K_QS;
        this.superScales = new SuperBlockScales(tiles.byteSize() / tileBytes, source.cols(), 2, arena);
    }

    private static boolean fifthBit(WeightMatrix source) {
        return source.type() == GgmlType.Q5_K;
    }

    @Override
    public long tiledBytes() {
        return super.tiledBytes() + superScales.byteSize();
    }

    @Override
    void packBlock(MemorySegment from, long row, int b, long tileBlock, int tile, int lane) {
        long superBlock = row + (b / SUB_BLOCKS) * superBlockBytes;
        int sub = b % SUB_BLOCKS;
        if (sub == 0) {
            superScales.set(tile, b, 0, lane, Float.float16ToFloat(from.get(PackedMatrix.HALF, superBlock)));
            superScales.set(tile, b, 1, lane, Float.float16ToFloat(from.get(PackedMatrix.HALF, superBlock + DMIN)));
        }
        long scales8 = KQuantScales.low8(from, superBlock + SCALES);
        int scales4 = KQuantScales.high4(from, superBlock + SCALES);
        tiles.set(PackedMatrix.BYTE, tileBlock + lane, (byte) KQuantScales.scale(scales8, scales4, sub));
        tiles.set(PackedMatrix.BYTE, tileBlock + TILE_ROWS + lane, (byte) KQuantScales.min(scales8, scales4, sub));
        // sub-block 2j + h is the low (h = 0) or high (h = 1) nibbles of bytes 32j..32j+31
        long nibbles = superBlock + qs + 32L * (sub / 2);
        int shift = 4 * (sub % 2);
        for (int k = 0; k < GROUPS; k++) {
            int packed = 0;
            for (int p = 0; p < 2; p++) {
                int c = 2 * k + p;
                int low = (from.get(PackedMatrix.BYTE, nibbles + c) >> shift) & 0x0F;
                int high = (from.get(PackedMatrix.BYTE, nibbles + c + 16) >> shift) & 0x0F;
                packed |= (low | high << 4) << (8 * p);
            }
            packGroup(tileBlock, lane, k, (short) packed);
        }
        if (fifthBit) {
            // sub-block s's fifth bit of its value c is bit s of qh[c]
            long qh = superBlock + Q5_K_QH;
            for (int j = 0; j < FIFTH_GROUPS; j++) {
                int packed = 0;
                for (int p = 0; p < 2; p++) {
                    for (int m = 0; m < 4; m++) {
                        int c = 2 * (4 * j + m) + p;
                        int low = (from.get(PackedMatrix.BYTE, qh + c) >> sub) & 1;
                        int high = (from.get(PackedMatrix.BYTE, qh + c + 16) >> sub) & 1;
                        packed |= (low << (2 * m) | high << (2 * m + 1)) << (8 * p);
                    }
                }
                tiles.set(PackedMatrix.HALF, tileBlock + FIFTH_BITS + (long) j * GROUP_BYTES + 2L * lane, (short) packed);
            }
        }
    }

    /*
     * Q5_K's kernels. As in TiledNibbleMatrix, the loops are written out with no vector-passing
     * helpers of ours; a group of four tiles is two calls of the two-tile loop, as for Q6_K. Each
     * nibble group k = 4j + m takes its fifth bits from fifth-bit group j: shifted left by 4 (low
     * nibbles) or 3 (high nibbles), then right by 2m, bit 4 holds them.
     */

    @Override
    void tileDot(long tile, Inputs inputs, int t, float[] lanes, int at) {
        if (!fifthBit) {
            super.tileDot(tile, inputs, t, lanes, at);
            return;
        }
        RoundedInputs in = (RoundedInputs) inputs;
        int tileIndex = (int) (tile / tileBytes);
        java.util.Arrays.fill(lanes, at, at + TILE_ROWS, 0f);
        java.util.Arrays.fill(in.minScratch, 0, TILE_ROWS, 0f);
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        VectorOperators.Conversion<Byte, Short> widen = VectorOperators.ZERO_EXTEND_B2S;
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, tile += Q5_K_BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector s = ShortVector.zero(ROW_PAIRS);
            for (int j = 0; j < FIFTH_GROUPS; j++) {
                ShortVector h = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles,
                        tile + FIFTH_BITS + (long) j * GROUP_BYTES, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector hl = h.lanewise(VectorOperators.LSHL, 4);
                ShortVector hh = h.lanewise(VectorOperators.LSHL, 3);
                for (int m = 0; m < 4; m++) {
                    int k = 4 * j + m;
                    ShortVector xl = IntVector.broadcast(INTS, in.pairs[pair + k]).reinterpretAsShorts();
                    ShortVector xh = IntVector.broadcast(INTS, in.pairs[pair + GROUPS + k]).reinterpretAsShorts();
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles,
                            tile + HEADER_BYTES + (long) k * GROUP_BYTES, le).convertShape(widen, ROW_PAIRS, 0);
                    s = s.add(w.and((short) 0x0F).or(hl.lanewise(VectorOperators.LSHR, 2 * m).and((short) 0x10))
                                    .sub((short) Q5_K_OFFSET).mul(xl))
                            .add(w.lanewise(VectorOperators.LSHR, 4).or(hh.lanewise(VectorOperators.LSHR, 2 * m).and((short) 0x10))
                                    .sub((short) Q5_K_OFFSET).mul(xh));
                }
            }
            s.intoArray(in.shortScratch, 0);
            scaleTilesInto(tile, tileIndex, 1, in, t, b, lanes, at);
            minTilesInto(tileIndex, 1, in, t, b);
        }
        addMins(1, in, lanes, at);
    }

    @Override
    void groupDot(long tile, Inputs inputs, int t, float[] lanes) {
        if (!fifthBit) {
            super.groupDot(tile, inputs, t, lanes);
            return;
        }
        java.util.Arrays.fill(lanes, 0, ROW_GROUP, 0f);
        pairDot(tile, (RoundedInputs) inputs, t, lanes, 0);
        pairDot(tile + 2 * tileBytes, (RoundedInputs) inputs, t, lanes, 2 * TILE_ROWS);
    }

    /** Q5_K's {@link #tileDot} for the two tiles from {@code tile}, into {@code lanes[at..at + 2 * TILE_ROWS)}. */
    private void pairDot(long tile, RoundedInputs in, int t, float[] lanes, int at) {
        int tileIndex = (int) (tile / tileBytes);
        java.util.Arrays.fill(in.minScratch, 0, 2 * TILE_ROWS, 0f);
        long t0 = tile;
        long t1 = tile + tileBytes;
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        VectorOperators.Conversion<Byte, Short> widen = VectorOperators.ZERO_EXTEND_B2S;
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, t0 += Q5_K_BLOCK_BYTES, t1 += Q5_K_BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector s0 = ShortVector.zero(ROW_PAIRS);
            ShortVector s1 = s0;
            for (int j = 0; j < FIFTH_GROUPS; j++) {
                long fifth = FIFTH_BITS + (long) j * GROUP_BYTES;
                ShortVector h0 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t0 + fifth, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector h1 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t1 + fifth, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector hl0 = h0.lanewise(VectorOperators.LSHL, 4);
                ShortVector hh0 = h0.lanewise(VectorOperators.LSHL, 3);
                ShortVector hl1 = h1.lanewise(VectorOperators.LSHL, 4);
                ShortVector hh1 = h1.lanewise(VectorOperators.LSHL, 3);
                for (int m = 0; m < 4; m++) {
                    int k = 4 * j + m;
                    ShortVector xl = IntVector.broadcast(INTS, in.pairs[pair + k]).reinterpretAsShorts();
                    ShortVector xh = IntVector.broadcast(INTS, in.pairs[pair + GROUPS + k]).reinterpretAsShorts();
                    long g = HEADER_BYTES + (long) k * GROUP_BYTES;
                    ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t0 + g, le).convertShape(widen, ROW_PAIRS, 0);
                    ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t1 + g, le).convertShape(widen, ROW_PAIRS, 0);
                    s0 = s0.add(w0.and((short) 0x0F).or(hl0.lanewise(VectorOperators.LSHR, 2 * m).and((short) 0x10))
                                    .sub((short) Q5_K_OFFSET).mul(xl))
                            .add(w0.lanewise(VectorOperators.LSHR, 4).or(hh0.lanewise(VectorOperators.LSHR, 2 * m).and((short) 0x10))
                                    .sub((short) Q5_K_OFFSET).mul(xh));
                    s1 = s1.add(w1.and((short) 0x0F).or(hl1.lanewise(VectorOperators.LSHR, 2 * m).and((short) 0x10))
                                    .sub((short) Q5_K_OFFSET).mul(xl))
                            .add(w1.lanewise(VectorOperators.LSHR, 4).or(hh1.lanewise(VectorOperators.LSHR, 2 * m).and((short) 0x10))
                                    .sub((short) Q5_K_OFFSET).mul(xh));
                }
            }
            s0.intoArray(in.shortScratch, 0);
            s1.intoArray(in.shortScratch, 2 * TILE_ROWS);
            scaleTilesInto(t0, tileIndex, 2, in, t, b, lanes, at);
            minTilesInto(tileIndex, 2, in, t, b);
        }
        addMins(2, in, lanes, at);
    }

    /** Q5_K: values q (0..31) with their fifth bits; Q4_K: the nibbles, as every 4-bit format. */
    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        if (!fifthBit) {
            super.decodeBlocks(tile, blocks, values, at);
            return;
        }
        for (int b = 0, v = at; b < blocks; b++, tile += Q5_K_BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            for (int k = 0; k < GROUPS; k++) {
                // lane i: row i's bytes p = 0 (bits 0-7) and 1 (bits 8-15); higher bits are sign copies
                IntVector bytes = (IntVector) loadShorts(tiles, tile + HEADER_BYTES + (long) k * GROUP_BYTES)
                        .convertShape(VectorOperators.S2I, INTS, 0);
                IntVector fifth = (IntVector) loadShorts(tiles, tile + FIFTH_BITS + (long) (k / 4) * GROUP_BYTES)
                        .convertShape(VectorOperators.S2I, INTS, 0);
                int m = k % 4;
                for (int p = 0; p < 2; p++) {
                    IntVector low = bytes.lanewise(VectorOperators.LSHR, 8 * p).and(0x0F)
                            .or(fifth.lanewise(VectorOperators.LSHR, 8 * p + 2 * m).and(1).lanewise(VectorOperators.LSHL, 4));
                    IntVector high = bytes.lanewise(VectorOperators.LSHR, 8 * p + 4).and(0x0F)
                            .or(fifth.lanewise(VectorOperators.LSHR, 8 * p + 2 * m + 1).and(1).lanewise(VectorOperators.LSHL, 4));
                    ((FloatVector) low.convert(VectorOperators.I2F, 0)).intoArray(values, v + (2 * k + p) * TILE_ROWS);
                    ((FloatVector) high.convert(VectorOperators.I2F, 0)).intoArray(values, v + (2 * k + 16 + p) * TILE_ROWS);
                }
            }
        }
    }

    /** {@code d * sc}: the super-block's f16 scale times the sub-block's 6-bit scale, per row. */
    @Override
    FloatVector scales(long tileBlock, int tile, int block) {
        return FloatVector.fromMemorySegment(FLOATS, superScales.segment, superScales.offset(tile, block, 0), ByteOrder.LITTLE_ENDIAN)
                .mul(toFloats(loadBytes(tiles, tileBlock)));
    }

    /** {@code dmin * m}, per row. */
    @Override
    FloatVector mins(int tile, int block) {
        long tileBlock = tileOffset(tile) + block * tileBlockBytes;
        return FloatVector.fromMemorySegment(FLOATS, superScales.segment, superScales.offset(tile, block, 1),
                ByteOrder.LITTLE_ENDIAN).mul(toFloats(loadBytes(tiles, tileBlock + TILE_ROWS)));
    }

    @Override
    void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at) {
        for (int k = 0; k < blocks; k++, tileBlock += tileBlockBytes) {
            scales(tileBlock, tile, block + k).intoArray(out, at + k * TILE_ROWS);
        }
    }
}
