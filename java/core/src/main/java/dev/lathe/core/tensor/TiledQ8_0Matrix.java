package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * Q8_0 in {@link RowTiledMatrix}'s tiles. A tile's block: {@code f32 d[TILE_ROWS]} then
 * {@code int8 q[32][TILE_ROWS]} (column-major within the block), 576 bytes at 16 rows.
 *
 * <p>NOTE: the scales stay f32 (6% more bytes than the file): with the file's f16 scales, widened
 * per block in a second method (the four-tile loop cannot hold the widening, {@link RowTiledMatrix}),
 * decode of the 200M Q8_0 model measured 71-83 vs 81-93 tok/s, interleaved in one session.
 */
final class TiledQ8_0Matrix extends RowTiledMatrix {
    private static final int SCALES_BYTES = 4 * TILE_ROWS;
    private static final int BLOCK_BYTES = SCALES_BYTES + BLOCK * TILE_ROWS;

    TiledQ8_0Matrix(WeightMatrix source, Arena arena) {
        super(source, BLOCK_BYTES, true, arena);
    }

    @Override
    void packBlock(MemorySegment from, long row, int b, long tileBlock, int tile, int lane) {
        long block = row + (long) b * Q8_0Matrix.BLOCK_BYTES;
        tiles.set(PackedMatrix.FLOAT, tileBlock + 4L * lane, Float.float16ToFloat(from.get(PackedMatrix.HALF, block)));
        for (int c = 0; c < BLOCK; c++) {
            tiles.set(PackedMatrix.BYTE, tileBlock + SCALES_BYTES + (long) c * TILE_ROWS + lane,
                    from.get(PackedMatrix.BYTE, block + 2 + c));
        }
    }

    private FloatVector column(long tileBlock, int c) {
        return toFloats(loadBytes(tiles, tileBlock + SCALES_BYTES + (long) c * TILE_ROWS));
    }

    @Override
    void tileDot(long tile, Inputs in, int t, float[] lanes, int at) {
        float[] x = in.values;
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int b = 0, xi = in.at(t); b < blocksPerRow; b++, tile += BLOCK_BYTES, xi += BLOCK) {
            FloatVector s = FloatVector.zero(FLOATS);
            for (int c = 0; c < BLOCK; c++) {
                s = column(tile, c).fma(FloatVector.broadcast(FLOATS, x[xi + c]), s);
            }
            acc = s.fma(scales(tile), acc);
        }
        acc.intoArray(lanes, at);
    }

    @Override
    void groupDot(long tile, Inputs in, int t, float[] lanes) {
        float[] x = in.values;
        long t0 = tile;
        long t1 = t0 + tileBytes;
        long t2 = t1 + tileBytes;
        long t3 = t2 + tileBytes;
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = acc0;
        FloatVector acc2 = acc0;
        FloatVector acc3 = acc0;
        for (int b = 0, xi = in.at(t); b < blocksPerRow; b++, xi += BLOCK,
                t0 += BLOCK_BYTES, t1 += BLOCK_BYTES, t2 += BLOCK_BYTES, t3 += BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(FLOATS);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            for (int c = 0; c < BLOCK; c++) {
                FloatVector xc = FloatVector.broadcast(FLOATS, x[xi + c]);
                s0 = column(t0, c).fma(xc, s0);
                s1 = column(t1, c).fma(xc, s1);
                s2 = column(t2, c).fma(xc, s2);
                s3 = column(t3, c).fma(xc, s3);
            }
            acc0 = s0.fma(scales(t0), acc0);
            acc1 = s1.fma(scales(t1), acc1);
            acc2 = s2.fma(scales(t2), acc2);
            acc3 = s3.fma(scales(t3), acc3);
        }
        acc0.intoArray(lanes, 0);
        acc1.intoArray(lanes, TILE_ROWS);
        acc2.intoArray(lanes, 2 * TILE_ROWS);
        acc3.intoArray(lanes, 3 * TILE_ROWS);
    }

    @Override
    FloatVector scales(long tileBlock, int tile, int block) {
        return scales(tileBlock);
    }

    private FloatVector scales(long tileBlock) {
        return FloatVector.fromMemorySegment(FLOATS, tiles, tileBlock, ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        for (int b = 0, v = at; b < blocks; b++, tile += BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            for (int c = 0; c < BLOCK; c++) {
                column(tile, c).intoArray(values, v + c * TILE_ROWS);
            }
        }
    }

    @Override
    void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at) {
        for (int k = 0; k < blocks; k++, tileBlock += tileBlockBytes) {
            scales(tileBlock, tile, block + k).intoArray(out, at + k * TILE_ROWS);
        }
    }
}
