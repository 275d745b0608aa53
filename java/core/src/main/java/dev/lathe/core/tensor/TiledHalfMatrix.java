package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.loadShorts;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * F16 or BF16 in {@link RowTiledMatrix}'s tiles, without scales: a tile's block of 32 columns is
 * {@code half w[32][TILE_ROWS]}, 1 KB at 16 rows, the same size as the file's. A (row, input)
 * product: per block, {@code s = fma(w[c], x[c], s)} for c = 0..31 from s = 0, then
 * {@code acc = acc + s} for the blocks in order. BF16 values are the file's bits, widened by one
 * shift (they are the top half of an f32).
 *
 * <p>The tiles hold each value times 2^10, exactly (a power of two), so that none is subnormal:
 * widened in registers as in {@link BlockLanes#halvesToFloats} (the bits shifted into f32
 * position, then one multiply, here by 2^102), a subnormal half became a subnormal f32 operand,
 * and a multiply with one costs a microcode assist of about a hundred cycles. NOTE: on the 200M
 * synthetic model's F16 matrices (0.15% subnormal halves, so one 16-lane vector in 40 holds
 * one), widening the file's halves ran at 5.8-7.9 GB/s on one thread, slower than the row kernel.
 * A matrix is tiled only if every value is finite and below 64 in magnitude (times 2^10 it must
 * stay a finite half); {@link RowTiledMatrix#tile} keeps the others as they are. NOTE: the format
 * is a field tested per column (one kernel for both, its branch hoisted by the JIT): 200M decode
 * F16 48.2 tok/s with it, the same as without; BF16 55.4 vs 34.3 for ggml's row kernel.
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
            tiles.set(PackedMatrix.HALF, tileBlock + 2L * (c * TILE_ROWS + lane), stored);
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

    private FloatVector column(long tileBlock, int c) {
        ShortVector halves = loadShorts(tiles, tileBlock + 2L * c * TILE_ROWS);
        if (bfloat16) {
            return ((IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats();
        }
        return widen(halves);
    }

    /**
     * The tiles' halves (times 2^10, none subnormal, all finite) to the file's values as floats:
     * the half's 16 bits to the top of an int, an arithmetic shift by 3 puts sign, exponent and
     * mantissa in f32 position (with three copies of the sign above the exponent, cleared by the
     * mask), and one multiply rebases the exponent.
     */
    private static FloatVector widen(ShortVector halves) {
        IntVector bits = (IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0);
        return bits.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFFFFFF)
                .reinterpretAsFloats().mul(REBASE);
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
            acc = acc.add(s);
        }
        acc.intoArray(lanes, at);
    }

    /**
     * NOTE: two tiles at a time, twice, as Q4_0's: the f16 widening is about eight vector
     * operations, and four tiles of it in one loop are more than C2 inlines in one method.
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
            for (int c = 0; c < BLOCK; c++) {
                FloatVector xc = FloatVector.broadcast(FLOATS, x[xi + c]);
                s0 = column(t0, c).fma(xc, s0);
                s1 = column(t1, c).fma(xc, s1);
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
            for (int c = 0; c < BLOCK; c++) {
                column(tile, c).intoArray(values, v + c * TILE_ROWS);
            }
        }
    }
}
