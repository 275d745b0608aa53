package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;

import java.lang.foreign.Arena;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q4_0 in {@link RowTiledMatrix}'s tiles. A tile's block: {@code f32 d[TILE_ROWS]} then
 * {@code uint8 qs[16][TILE_ROWS]}, byte j of each row as in ggml (low nibble value j, high nibble
 * value j + 16), 320 bytes at 16 rows. Values are {@code nibble - 8}, and a (row, input) product
 * is {@link RowTiledMatrix}'s chain over them.
 */
final class TiledQ4_0Matrix extends RowTiledMatrix {
    private static final int SCALES_BYTES = 4 * TILE_ROWS;
    private static final int PAIRS = BLOCK / 2;
    private static final int BLOCK_BYTES = SCALES_BYTES + PAIRS * TILE_ROWS;
    /**
     * Flips bit 3 of both nibbles: a nibble q becomes q ^ 8, whose value read as a signed 4-bit
     * number is exactly q - 8, ggml's value. Widened with sign to 32 bits, the high nibble's value
     * is then one arithmetic shift away and the low one's two (no mask, no subtraction).
     */
    private static final int SIGNED_NIBBLES = 0x88;

    TiledQ4_0Matrix(WeightMatrix source, Arena arena) {
        super(source, BLOCK_BYTES, true, arena);
        repack(Q4_0Matrix.BLOCK_BYTES, (from, block, tileBlock, lane) -> {
            tiles.set(PackedMatrix.FLOAT, tileBlock + 4L * lane, Float.float16ToFloat(from.get(PackedMatrix.HALF, block)));
            for (int j = 0; j < PAIRS; j++) {
                tiles.set(PackedMatrix.BYTE, tileBlock + SCALES_BYTES + (long) j * TILE_ROWS + lane,
                        (byte) (from.get(PackedMatrix.BYTE, block + 2 + j) ^ SIGNED_NIBBLES));
            }
        });
    }

    private ByteVector pair(long tileBlock, int j) {
        return loadBytes(tiles, tileBlock + SCALES_BYTES + (long) j * TILE_ROWS);
    }

    private static IntVector widen(ByteVector packed) {
        return (IntVector) packed.convertShape(VectorOperators.B2I, INTS, 0);
    }

    /** Values j: the low signed nibbles. */
    private static FloatVector low(ByteVector packed) {
        return (FloatVector) widen(packed).lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                .convert(VectorOperators.I2F, 0);
    }

    /** Values j + 16: the high signed nibbles. */
    private static FloatVector high(ByteVector packed) {
        return (FloatVector) widen(packed).lanewise(VectorOperators.ASHR, 4).convert(VectorOperators.I2F, 0);
    }

    @Override
    void tileDot(long tile, float[] x, int xOffset, float[] lanes, int at) {
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int b = 0, xi = xOffset; b < blocksPerRow; b++, tile += BLOCK_BYTES, xi += BLOCK) {
            FloatVector s = FloatVector.zero(FLOATS);
            for (int j = 0; j < PAIRS; j++) {
                s = low(pair(tile, j)).fma(FloatVector.broadcast(FLOATS, x[xi + j]), s);
            }
            for (int j = 0; j < PAIRS; j++) {
                s = high(pair(tile, j)).fma(FloatVector.broadcast(FLOATS, x[xi + PAIRS + j]), s);
            }
            acc = s.fma(scales(tile), acc);
        }
        acc.intoArray(lanes, at);
    }

    /**
     * NOTE: two tiles at a time, twice: the four-tile loop written out (as Q8_0's) is more than
     * C2 inlines in one method (NodeCountInliningCutoff), and its vectors were then boxed (4x slower).
     */
    @Override
    void groupDot(long tile, float[] x, int xOffset, float[] lanes) {
        pairDot(tile, tile + tileBytes, x, xOffset, lanes, 0);
        pairDot(tile + 2 * tileBytes, tile + 3 * tileBytes, x, xOffset, lanes, 2 * TILE_ROWS);
    }

    private void pairDot(long t0, long t1, float[] x, int xOffset, float[] lanes, int at) {
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = acc0;
        for (int b = 0, xi = xOffset; b < blocksPerRow; b++, xi += BLOCK, t0 += BLOCK_BYTES, t1 += BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(FLOATS);
            FloatVector s1 = s0;
            for (int j = 0; j < PAIRS; j++) {
                FloatVector xj = FloatVector.broadcast(FLOATS, x[xi + j]);
                s0 = low(pair(t0, j)).fma(xj, s0);
                s1 = low(pair(t1, j)).fma(xj, s1);
            }
            for (int j = 0; j < PAIRS; j++) {
                FloatVector xj = FloatVector.broadcast(FLOATS, x[xi + PAIRS + j]);
                s0 = high(pair(t0, j)).fma(xj, s0);
                s1 = high(pair(t1, j)).fma(xj, s1);
            }
            acc0 = s0.fma(scales(t0), acc0);
            acc1 = s1.fma(scales(t1), acc1);
        }
        acc0.intoArray(lanes, at);
        acc1.intoArray(lanes, at + TILE_ROWS);
    }

    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        for (int b = 0, v = at; b < blocks; b++, tile += BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            for (int j = 0; j < PAIRS; j++) {
                ByteVector packed = pair(tile, j);
                low(packed).intoArray(values, v + j * TILE_ROWS);
                high(packed).intoArray(values, v + (PAIRS + j) * TILE_ROWS);
            }
        }
    }
}
