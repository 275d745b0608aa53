package dev.lathe.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A K-quant matrix's super-block scales, widened from the file's f16 to f32 at repack and kept
 * beside its {@link RowTiledMatrix} tiles: per tile and super-block (256 columns), {@code vectors}
 * vectors of {@link RowTiledMatrix#TILE_ROWS} lanes, one per row (Q4_K and Q5_K: {@code d} then
 * {@code dmin}; Q6_K: {@code d}). The kernels load a vector at {@link #offset} themselves: no
 * vector passes through this class (RowTiledMatrix's NOTE on C2 and boxing).
 */
final class SuperBlockScales {
    private static final int SUPER_BLOCK = 256;
    private static final int BLOCKS_PER_SUPER_BLOCK = SUPER_BLOCK / RowTiledMatrix.BLOCK;
    private static final long VECTOR_BYTES = 4L * RowTiledMatrix.TILE_ROWS;

    /** {@code [tiles, super-blocks per row, vectors, TILE_ROWS]} f32. */
    final MemorySegment segment;
    private final int superBlocksPerRow;
    private final int vectors;

    SuperBlockScales(long tiles, int cols, int vectors, Arena arena) {
        this.superBlocksPerRow = cols / SUPER_BLOCK;
        this.vectors = vectors;
        this.segment = arena.allocate(tiles * superBlocksPerRow * vectors * VECTOR_BYTES, 64);
    }

    /** Where vector {@code vector} of tile {@code tile} is, for the super-block of 32-column block {@code block}. */
    long offset(int tile, int block, int vector) {
        return (((long) tile * superBlocksPerRow + block / BLOCKS_PER_SUPER_BLOCK) * vectors + vector) * VECTOR_BYTES;
    }

    /** Writes lane {@code lane} (a row of the tile) of that vector. */
    void set(int tile, int block, int vector, int lane, float value) {
        segment.set(PackedMatrix.FLOAT, offset(tile, block, vector) + 4L * lane, value);
    }

    long byteSize() {
        return segment.byteSize();
    }
}
