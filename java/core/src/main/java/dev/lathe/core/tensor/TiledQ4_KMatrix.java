package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * Q4_K in {@link TiledNibbleMatrix}'s tiles. A Q4_K super-block (256 values) has two f16 scales
 * {@code d} and {@code dmin}, and per 32-value sub-block a 6-bit scale {@code sc} and min
 * {@code m}: value = {@code d * sc * nibble - dmin * m}. Each sub-block is one tile block: its
 * header holds the rows' {@code sc} (one byte each) then their {@code m}, and its nibbles are
 * re-packed into Q4_0's order. The super-blocks' {@code d} and {@code dmin} (widened to f32, per
 * tile and super-block) sit in a second, small segment. {@code d * sc} and {@code dmin * m} are
 * exact in f32 (11 by 6 bits), the products ggml computes.
 *
 * <p>Bytes: 288 per tile block plus 128 per tile super-block (16 rows), against the file's 144
 * per row super-block: 3.5% more. NOTE: f32, not the file's f16, for {@code d} and {@code dmin}:
 * one load instead of a widening of eight operations, twice per block and tile (decode measured
 * 80-104 vs 84-89 tok/s on the 200M Q4_K model: within the noise, kept for the fewer operations).
 */
final class TiledQ4_KMatrix extends TiledNibbleMatrix {
    private static final int SUB_BLOCKS = Q4_KMatrix.BLOCK / BLOCK;
    /** Per tile and super-block: {@code f32 d[TILE_ROWS]}, then {@code f32 dmin[TILE_ROWS]}. */
    private static final int SUPER_BYTES = 8 * TILE_ROWS;
    private static final int DMIN = 2;
    private static final int SCALES = 4;
    private static final int QS = 16;

    private final int superBlocksPerRow;
    private final MemorySegment superScales; // [tiles, super-blocks per row, SUPER_BYTES]

    TiledQ4_KMatrix(WeightMatrix source, Arena arena) {
        super(source, arena, 0, true);
        this.superBlocksPerRow = source.cols() / Q4_KMatrix.BLOCK;
        this.superScales = arena.allocate(tiles.byteSize() / tileBytes * superBlocksPerRow * SUPER_BYTES, 64);
    }

    @Override
    public long tiledBytes() {
        return super.tiledBytes() + superScales.byteSize();
    }

    /** Where tile {@code tile}'s {@code d} and {@code dmin} for block {@code block}'s super-block are. */
    private long superOffset(int tile, int block) {
        return ((long) tile * superBlocksPerRow + block / SUB_BLOCKS) * SUPER_BYTES;
    }

    @Override
    void packBlock(MemorySegment from, long row, int b, long tileBlock, int tile, int lane) {
        long superBlock = row + (long) (b / SUB_BLOCKS) * Q4_KMatrix.BLOCK_BYTES;
        int sub = b % SUB_BLOCKS;
        if (sub == 0) {
            long at = superOffset(tile, b) + 4L * lane;
            superScales.set(PackedMatrix.FLOAT, at, Float.float16ToFloat(from.get(PackedMatrix.HALF, superBlock)));
            superScales.set(PackedMatrix.FLOAT, at + 4L * TILE_ROWS,
                    Float.float16ToFloat(from.get(PackedMatrix.HALF, superBlock + DMIN)));
        }
        long scales8 = KQuantScales.low8(from, superBlock + SCALES);
        int scales4 = KQuantScales.high4(from, superBlock + SCALES);
        tiles.set(PackedMatrix.BYTE, tileBlock + lane, (byte) KQuantScales.scale(scales8, scales4, sub));
        tiles.set(PackedMatrix.BYTE, tileBlock + TILE_ROWS + lane, (byte) KQuantScales.min(scales8, scales4, sub));
        // sub-block 2j + h is the low (h = 0) or high (h = 1) nibbles of bytes 32j..32j+31
        long qs = superBlock + QS + 32L * (sub / 2);
        int shift = 4 * (sub % 2);
        for (int k = 0; k < GROUPS; k++) {
            int packed = 0;
            for (int p = 0; p < 2; p++) {
                int c = 2 * k + p;
                int low = (from.get(PackedMatrix.BYTE, qs + c) >> shift) & 0x0F;
                int high = (from.get(PackedMatrix.BYTE, qs + c + 16) >> shift) & 0x0F;
                packed |= (low | high << 4) << (8 * p);
            }
            packGroup(tileBlock, lane, k, (short) packed);
        }
    }

    /** {@code d * sc}: the super-block's f16 scale times the sub-block's 6-bit scale, per row. */
    @Override
    FloatVector scales(long tileBlock, int tile, int block) {
        return FloatVector.fromMemorySegment(FLOATS, superScales, superOffset(tile, block), ByteOrder.LITTLE_ENDIAN)
                .mul(toFloats(loadBytes(tiles, tileBlock)));
    }

    /** {@code dmin * m}, per row. */
    @Override
    FloatVector mins(int tile, int block) {
        long tileBlock = tileOffset(tile) + block * tileBlockBytes;
        return FloatVector.fromMemorySegment(FLOATS, superScales, superOffset(tile, block) + 4L * TILE_ROWS,
                ByteOrder.LITTLE_ENDIAN).mul(toFloats(loadBytes(tiles, tileBlock + TILE_ROWS)));
    }

    @Override
    void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at) {
        for (int k = 0; k < blocks; k++, tileBlock += tileBlockBytes) {
            scales(tileBlock, tile, block + k).intoArray(out, at + k * TILE_ROWS);
        }
    }
}
