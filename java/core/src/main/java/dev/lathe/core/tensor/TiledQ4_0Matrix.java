package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.halvesToFloats;
import static dev.lathe.core.tensor.BlockLanes.loadShorts;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * Q4_0 in {@link TiledNibbleMatrix}'s tiles: a block's value is {@code d * (nibble - 8)}. A tile
 * block's header is the rows' f16 scales {@code d}, as in the file: the tiles are the file's
 * bytes, moved (288 at 16 rows).
 */
final class TiledQ4_0Matrix extends TiledNibbleMatrix {
    TiledQ4_0Matrix(WeightMatrix source, Arena arena) {
        super(source, arena, 8, false, BLOCK_BYTES);
    }

    @Override
    void packBlock(MemorySegment from, long row, int b, long tileBlock, int tile, int lane) {
        long block = row + (long) b * Q4_0Matrix.BLOCK_BYTES;
        tiles.set(PackedMatrix.HALF, tileBlock + 2L * lane, from.get(PackedMatrix.HALF, block));
        for (int k = 0; k < GROUPS; k++) {
            // ggml's bytes 2k and 2k + 1 stay side by side: one 16-bit copy
            packGroup(tileBlock, lane, k, from.get(PackedMatrix.HALF, block + 2 + 2 * k));
        }
    }

    /** The file's f16 scales, widened (once per block and tile, outside the products' inner loop). */
    @Override
    FloatVector scales(long tileBlock, int tile, int block) {
        return halvesToFloats(loadShorts(tiles, tileBlock));
    }

    @Override
    void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at) {
        for (int k = 0; k < blocks; k++, tileBlock += tileBlockBytes) {
            scales(tileBlock, tile, block + k).intoArray(out, at + k * TILE_ROWS);
        }
    }
}
