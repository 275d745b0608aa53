package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * F16 or BF16 in {@link RowTiledMatrix}'s tiles, without scales: a tile's block of 32 columns is
 * 1 KB at 16 rows, the same size as the file's, held as 16 column pairs: pair p is
 * {@code int[TILE_ROWS]} whose lane i holds row i's column 2p in its low 16 bits and column 2p + 1
 * in its high 16 bits. A (row, input) product: per block, {@code s = fma(w[c], x[c], s)} for
 * c = 0..31 from s = 0, then {@code acc = acc + s} for the blocks in order. BF16 values are the
 * file's bits: they are the top half of an f32, so the odd column is its lanes masked and the even
 * one its lanes shifted left by 16, one operation each.
 *
 * <p>NOTE: the pairs replaced a layout of one column per {@code short[TILE_ROWS]}, widened by a
 * sign-extending load and a shift. A 512-bit int load now brings two columns, the odd column's
 * half is already in place, and the F16 widening needs 4.5 vector operations per 16 weights
 * instead of 6. Measured (a /tmp harness, one thread, two tiles walked together): in cache 21-25
 * vs 16-20 GB/s, from memory 8.1-9.4 vs 5.7-7.5 GB/s. Folding the exponent rebase into the inputs
 * (x times 2^102, one multiply fewer) gained 10% more in cache and nothing from memory, and x would
 * have overflowed above 2^26, so the multiply stays.
 *
 * <p>The tiles hold each F16 value times 2^10, exactly (a power of two), so that none is subnormal:
 * widened in registers as in {@link BlockLanes#halvesToFloats} (the bits shifted into f32
 * position, then one multiply, here by 2^102), a subnormal half became a subnormal f32 operand,
 * and a multiply with one costs a microcode assist of about a hundred cycles. NOTE: on the 200M
 * synthetic model's F16 matrices (0.15% subnormal halves, so one 16-lane vector in 40 holds
 * one), widening the file's halves ran at 5.8-7.9 GB/s on one thread, slower than the row kernel.
 * A matrix is tiled only if every value is finite and below 64 in magnitude (times 2^10 it must
 * stay a finite half); {@link RowTiledMatrix#tile} keeps the others as they are. NOTE: the format
 * is a field tested per column pair (one kernel for both, its branch hoisted by the JIT).
 */
final class TiledHalfMatrix extends RowTiledMatrix {
    private static final int BLOCK_BYTES = 2 * BLOCK * TILE_ROWS;
    /** 64 as a half's magnitude bits: values from here up (and inf, NaN) do not fit times 2^10. */
    private static final int TOO_LARGE = 0x5400;
    private static final float SCALE = 0x1p10f;
    /** Rebases the shifted exponent (bias 15, values times 2^10) onto f32's bias 127. */
    private static final float REBASE = 0x1p102f;

    private final boolean bfloat16;

    /** F16: call only when {@link #fits} says so. */
    TiledHalfMatrix(WeightMatrix source, Arena arena) {
        super(source, BLOCK_BYTES, false, arena);
        this.bfloat16 = source.type() == GgmlType.BF16;
    }

    @Override
    void packBlock(MemorySegment from, long row, int b, long tileBlock, int tile, int lane) {
        long block = row + 2L * BLOCK * b;
        for (int c = 0; c < BLOCK; c++) {
            short half = from.get(PackedMatrix.HALF, block + 2L * c);
            short stored = bfloat16 ? half : Float.floatToFloat16(Float.float16ToFloat(half) * SCALE);
            tiles.set(PackedMatrix.HALF, tileBlock + 2L * ((c & ~1) * TILE_ROWS + 2 * lane + (c & 1)), stored);
        }
    }

    /** Whether every value of {@code source} (F16) is finite and below 64 in magnitude, so that it can be tiled. */
    static boolean fits(WeightMatrix source) {
        MemorySegment from = source.data();
        long values = source.rowBytes() / 2 * source.rows();
        for (long i = 0; i < values; i++) {
            if ((from.get(PackedMatrix.HALF, 2 * i) & 0x7FFF) >= TOO_LARGE) {
                return false;
            }
        }
        return true;
    }

    /** Columns c and c + 1 (c even) of a tile block, one int lane per row: column c in the low half, c + 1 in the high. */
    private static IntVector columnPair(MemorySegment tiles, long tileBlock, int c) {
        return IntVector.fromMemorySegment(INTS, tiles, tileBlock + 2L * c * TILE_ROWS, ByteOrder.LITTLE_ENDIAN);
    }

    /** The even column of a {@link #columnPair} as floats. */
    private FloatVector evenColumn(IntVector pair) {
        IntVector high = pair.lanewise(VectorOperators.LSHL, 16);
        return bfloat16 ? high.reinterpretAsFloats() : rebase(high);
    }

    /** The odd column of a {@link #columnPair} as floats: its bits are already the lanes' top half. */
    private FloatVector oddColumn(IntVector pair) {
        return bfloat16 ? pair.and(0xFFFF0000).reinterpretAsFloats() : rebase(pair);
    }

    /**
     * A tile's half (times 2^10, none subnormal, all finite) in the top 16 bits of each lane (the
     * low 16 bits anything) to the file's value as a float: an arithmetic shift by 3 puts sign,
     * exponent and mantissa in f32 position, with three copies of the sign above the exponent; the
     * mask clears those and the 13 bits shifted in below the mantissa, and one multiply rebases the
     * exponent.
     */
    private static FloatVector rebase(IntVector halfOnTop) {
        return halfOnTop.lanewise(VectorOperators.ASHR, 3).and(0x8FFFE000).reinterpretAsFloats().mul(REBASE);
    }

    @Override
    void tileDot(long tile, Inputs in, int t, float[] lanes, int at) {
        float[] x = in.values;
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int b = 0, xi = in.at(t); b < blocksPerRow; b++, tile += BLOCK_BYTES, xi += BLOCK) {
            FloatVector s = FloatVector.zero(FLOATS);
            for (int c = 0; c < BLOCK; c += 2) {
                IntVector pair = columnPair(tiles, tile, c);
                s = evenColumn(pair).fma(FloatVector.broadcast(FLOATS, x[xi + c]), s);
                s = oddColumn(pair).fma(FloatVector.broadcast(FLOATS, x[xi + c + 1]), s);
            }
            acc = acc.add(s);
        }
        acc.intoArray(lanes, at);
    }

    /**
     * NOTE: two tiles at a time, twice, as Q4_0's: with the f16 widening, four tiles in one loop
     * are more than C2 inlines in one method. Tried again with the column pairs: 200M F16 decode
     * fell from 34-41 to 15-17 tok/s, its vectors boxed.
     */
    @Override
    void groupDot(long tile, Inputs in, int t, float[] lanes) {
        pairDot(tile, tile + tileBytes, in.values, in.at(t), lanes, 0);
        pairDot(tile + 2 * tileBytes, tile + 3 * tileBytes, in.values, in.at(t), lanes, 2 * TILE_ROWS);
    }

    private void pairDot(long t0, long t1, float[] x, int xOffset, float[] lanes, int at) {
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = acc0;
        for (int b = 0, xi = xOffset; b < blocksPerRow; b++, xi += BLOCK, t0 += BLOCK_BYTES, t1 += BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(FLOATS);
            FloatVector s1 = s0;
            for (int c = 0; c < BLOCK; c += 2) {
                IntVector pair0 = columnPair(tiles, t0, c);
                IntVector pair1 = columnPair(tiles, t1, c);
                FloatVector xc = FloatVector.broadcast(FLOATS, x[xi + c]);
                s0 = evenColumn(pair0).fma(xc, s0);
                s1 = evenColumn(pair1).fma(xc, s1);
                xc = FloatVector.broadcast(FLOATS, x[xi + c + 1]);
                s0 = oddColumn(pair0).fma(xc, s0);
                s1 = oddColumn(pair1).fma(xc, s1);
            }
            acc0 = acc0.add(s0);
            acc1 = acc1.add(s1);
        }
        acc0.intoArray(lanes, at);
        acc1.intoArray(lanes, at + TILE_ROWS);
    }

    @Override
    FloatVector scales(long tileBlock, int tile, int block) {
        throw new UnsupportedOperationException("F16 and BF16 tiles have no block scales");
    }

    @Override
    void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at) {
        throw new UnsupportedOperationException("F16 and BF16 tiles have no block scales");
    }

    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        for (int b = 0, v = at; b < blocks; b++, tile += BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            for (int c = 0; c < BLOCK; c += 2) {
                IntVector pair = columnPair(tiles, tile, c);
                evenColumn(pair).intoArray(values, v + c * TILE_ROWS);
                oddColumn(pair).intoArray(values, v + (c + 1) * TILE_ROWS);
            }
        }
    }
}
