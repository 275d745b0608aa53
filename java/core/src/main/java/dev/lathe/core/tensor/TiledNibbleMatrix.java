package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.loadShorts;

import java.lang.foreign.Arena;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * 4-bit formats (Q4_0, Q4_K) in {@link RowTiledMatrix}'s tiles, multiplied in integers against
 * inputs rounded to 8 bits, as llama.cpp does (its Q4_0 and Q4_K dot products read the
 * activations as Q8_0 and Q8_K).
 *
 * <p>Inputs: each block of 32 values is rounded to {@code q = rint(x * 127 / amax)}, with step
 * {@code amax / 127} ({@link #round}). A block's value is {@code scale * (nibble - offset)}
 * (Q4_0: offset 8) or {@code scale * nibble - min} (Q4_K: offset 0, and a per-block min). A
 * (row, input) product is then, block by block in order,
 * {@code acc = fma(float(sum over the block of (nibble - offset) * q), scale * step, acc)}, and
 * for Q4_K, in a second chain, {@code mins = fma(min, -(step * sum of q), mins)}, added to
 * {@code acc} at the end. A block's integer sum is exact (at most 32 * 15 * 127 in magnitude),
 * so the integer kernels for single inputs and the float kernels over decoded tiles for batches
 * get the same bits.
 *
 * <p>A tile's block: {@link #HEADER_BYTES} of the format's scales, then 8 groups of
 * {@code 2 * TILE_ROWS} bytes. Group k holds bytes 2k and 2k + 1 of each row's block in ggml's
 * Q4_0 order (byte j: value j in the low nibble, value j + 16 in the high one) side by side (row
 * i at bytes 2i, 2i + 1): zero-extended to 16-bit lanes, lane 2i + p is row i's byte 2k + p,
 * whose low nibble is column 2k + p and high nibble column 2k + 16 + p. An int broadcast of two
 * rounded inputs (columns 2k, 2k + 1) then lines up with the low nibbles lane for lane, and one
 * of columns 2k + 16, 2k + 17 with the high ones.
 *
 * <p>NOTE: why integers: the float kernel (nibbles widened to 32-bit lanes, shifted, converted,
 * one FMA per 16 weights) was compute-bound, 0.56 of a plain sum over the same bytes at two
 * threads. Here one 16-bit multiply covers 32 weights. Measured (a /tmp harness, 180 MB of tiles
 * from memory, two threads, the same run): float 9.4-9.8 GB/s, this kernel 14.4-16.5, a plain
 * vector sum 18.6-20.4. The products fit 16 bits: 16 per lane per block, each at most 15 * 127
 * (unsigned nibbles; Q4_0's -8 comes back once per block as {@code -8 * sum of q}).
 */
abstract sealed class TiledNibbleMatrix extends RowTiledMatrix permits TiledQ4_0Matrix, TiledQ4_KMatrix {
    /** A tile block's scales, before its nibbles: Q4_0's f16 scales, Q4_K's 6-bit scales and mins. */
    static final int HEADER_BYTES = 2 * TILE_ROWS;
    static final int GROUPS = BLOCK / 4;
    static final int GROUP_BYTES = 2 * TILE_ROWS;
    static final int BLOCK_BYTES = HEADER_BYTES + GROUPS * GROUP_BYTES;
    private static final int ROUNDED_MAX = 127;
    /** 1.5 * 2^23: x + this - this is x rounded to the nearest integer, ties to even, for |x| < 2^22. */
    private static final float ROUND = 0x1.8p23f;
    /** Two rows' worth of bytes (one group) and of 16-bit lanes (a whole vector). */
    private static final VectorSpecies<Byte> GROUP = VectorSpecies.of(byte.class, VectorShape.forBitSize(GROUP_BYTES * Byte.SIZE));
    private static final VectorSpecies<Short> ROW_PAIRS = VectorSpecies.of(short.class, FLOATS.vectorShape());

    /** A value is {@code scale * (nibble - offset)} (less the block's min, if it has one). */
    private final int offset;
    /** Whether blocks have mins (Q4_K): {@link #mins} and the second chain of sums. */
    private final boolean hasMins;

    TiledNibbleMatrix(WeightMatrix source, Arena arena, int offset, boolean hasMins) {
        super(source, BLOCK_BYTES, true, arena);
        this.offset = offset;
        this.hasMins = hasMins;
    }

    /** The {@link #TILE_ROWS} mins of block {@code block} of tile {@code tile} (formats with mins). */
    FloatVector mins(int tile, int block) {
        throw new UnsupportedOperationException(type() + " blocks have no mins");
    }

    /**
     * Writes group k of a row's tile block: {@code bytes} holds the block's bytes 2k and 2k + 1 in
     * Q4_0's order, the first in its low 8 bits.
     */
    final void packGroup(long tileBlock, int lane, int k, short bytes) {
        tiles.set(PackedMatrix.HALF, tileBlock + HEADER_BYTES + (long) k * GROUP_BYTES + 2 * lane, bytes);
    }

    /** The inputs rounded to 8 bits per block, in the forms the kernels read. */
    static final class RoundedInputs extends Inputs {
        /** Per input, the rounded values as 16-bit pairs: int {@code [t * cols / 2 + c / 2]} holds columns c (low half) and c + 1. */
        final int[] pairs;
        /** Per input and block, the sum of its rounded values. */
        final int[] sums;
        /** Per input and block, {@code -(step * sum of its rounded values)}: what a block's min is multiplied by. */
        final float[] minWeights;
        /** A group of tiles' 16-bit sums, between the two halves of {@link #groupDot}. */
        final short[] shortScratch = new short[GROUP_TILES * 2 * TILE_ROWS];
        /** A group of tiles' min terms, carried through {@link #groupDot}. */
        final float[] minScratch = new float[ROW_GROUP];

        RoundedInputs(float[] values, int stride, float[] steps, int[] pairs, int[] sums, float[] minWeights) {
            super(values, 0, stride, steps);
            this.pairs = pairs;
            this.sums = sums;
            this.minWeights = minWeights;
        }
    }

    @Override
    Inputs inputs(float[] x, int offset, int stride, int n) {
        return round(x, offset, stride, n, blocksPerRow, n < DECODE_MIN_INPUTS);
    }

    /**
     * {@code n} inputs of {@code blocks * 32} values each, from {@code x[offset + t * stride]}, rounded
     * block by block: step {@code amax / 127}, {@code q = rint(x * (127 / amax))} (0 where amax is 0).
     * A NaN input makes its block's step NaN, and so its products. The pairs the integer kernels
     * read are filled only {@code forIntegerKernels}; the decoded tiles read the values.
     */
    static RoundedInputs round(float[] x, int offset, int stride, int n, int blocks, boolean forIntegerKernels) {
        int cols = blocks * BLOCK;
        float[] values = new float[n * cols];
        float[] steps = new float[n * blocks];
        int[] pairs = forIntegerKernels ? new int[n * cols / 2] : null;
        int[] sums = new int[n * blocks];
        float[] minWeights = new float[n * blocks];
        for (int t = 0; t < n; t++) {
            for (int b = 0; b < blocks; b++) {
                int from = offset + t * stride + b * BLOCK;
                int to = t * cols + b * BLOCK;
                FloatVector amax = FloatVector.zero(FLOATS);
                for (int j = 0; j < BLOCK; j += LANES) {
                    amax = amax.max(FloatVector.fromArray(FLOATS, x, from + j).abs());
                }
                float max = amax.reduceLanes(VectorOperators.MAX);
                float inverse = max == 0 ? 0 : ROUNDED_MAX / max;
                steps[t * blocks + b] = max / ROUNDED_MAX;
                for (int j = 0; j < BLOCK; j += LANES) {
                    FloatVector.fromArray(FLOATS, x, from + j).mul(inverse).add(ROUND).sub(ROUND).intoArray(values, to + j);
                }
                int sum = 0;
                for (int c = to; c < to + BLOCK; c++) {
                    sum += (int) values[c];
                }
                sums[t * blocks + b] = sum;
                minWeights[t * blocks + b] = -(steps[t * blocks + b] * sum);
                if (forIntegerKernels) {
                    for (int c = to; c < to + BLOCK; c += 2) {
                        pairs[c / 2] = (int) values[c] & 0xFFFF | (int) values[c + 1] << 16;
                    }
                }
            }
        }
        return new RoundedInputs(values, cols, steps, pairs, sums, minWeights);
    }

    /** Group k of a tile block as 16-bit lanes: lane 2i + p is row i's byte 2k + p. */
    private ShortVector group(long tileBlock, int k) {
        return (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, tileBlock + HEADER_BYTES + (long) k * GROUP_BYTES,
                ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.ZERO_EXTEND_B2S, ROW_PAIRS, 0);
    }

    /** Two rounded inputs in every pair of 16-bit lanes (the first in the even lanes). */
    private static ShortVector pairs(int pair) {
        return IntVector.broadcast(INTS, pair).reinterpretAsShorts();
    }

    /** {@code sums + low nibbles * low + high nibbles * high}, lane for lane. */
    private static ShortVector multiplyAdd(ShortVector sums, ShortVector group, ShortVector low, ShortVector high) {
        return sums.add(group.and((short) 0x0F).mul(low)).add(group.lanewise(VectorOperators.LSHR, 4).mul(high));
    }

    /**
     * A block's 16-bit sums (two per row) added per row, less {@code offset * sum of the inputs}: the
     * block's exact integer products, scaled into {@code acc}.
     */
    private FloatVector scaleInto(ShortVector sums, long tileBlock, int tile, RoundedInputs in, int t, int b,
                                  FloatVector acc) {
        IntVector pairsOfSums = sums.reinterpretAsInts();
        IntVector total = pairsOfSums.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                .add(pairsOfSums.lanewise(VectorOperators.ASHR, 16));
        if (offset != 0) {
            total = total.sub(offset * in.sums[t * blocksPerRow + b]);
        }
        return ((FloatVector) total.convert(VectorOperators.I2F, 0)).fma(blockScale(tileBlock, tile, in, t, b), acc);
    }

    /** The min term of block b of tile {@code tile} for input t, added to the chain {@code mins}. */
    private FloatVector minInto(int tile, RoundedInputs in, int t, int b, FloatVector mins) {
        return mins(tile, b).fma(FloatVector.broadcast(FLOATS, in.minWeights[t * blocksPerRow + b]), mins);
    }

    @Override
    void tileDot(long tile, Inputs inputs, int t, float[] lanes, int at) {
        RoundedInputs in = (RoundedInputs) inputs;
        int tileIndex = (int) (tile / tileBytes);
        FloatVector acc = FloatVector.zero(FLOATS);
        FloatVector mins = acc;
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, tile += BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector s = ShortVector.zero(ROW_PAIRS);
            for (int k = 0; k < GROUPS; k++) {
                s = multiplyAdd(s, group(tile, k), pairs(in.pairs[pair + k]), pairs(in.pairs[pair + GROUPS + k]));
            }
            acc = scaleInto(s, tile, tileIndex, in, t, b, acc);
            if (hasMins) {
                mins = minInto(tileIndex, in, t, b, mins);
            }
        }
        (hasMins ? acc.add(mins) : acc).intoArray(lanes, at);
    }

    /**
     * NOTE: the four tiles' 16-bit sums go through {@code in.shortScratch} to {@link #scaleGroupInto}, a
     * second method: with the scaling written in the same loop, it was more than C2 inlines in one
     * method, and the vectors were boxed (a /tmp harness: 2 vs 14-16 GB/s). Four tiles, not two:
     * four memory streams (two: 11.8-13.3 GB/s in the same runs).
     */
    @Override
    void groupDot(long tile, Inputs inputs, int t, float[] lanes) {
        RoundedInputs in = (RoundedInputs) inputs;
        short[] scratch = in.shortScratch;
        int tileIndex = (int) (tile / tileBytes);
        long t0 = tile;
        long t1 = t0 + tileBytes;
        long t2 = t1 + tileBytes;
        long t3 = t2 + tileBytes;
        java.util.Arrays.fill(lanes, 0, ROW_GROUP, 0f);
        java.util.Arrays.fill(in.minScratch, 0f);
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, pair += BLOCK / 2,
                t0 += BLOCK_BYTES, t1 += BLOCK_BYTES, t2 += BLOCK_BYTES, t3 += BLOCK_BYTES) {
            ShortVector s0 = ShortVector.zero(ROW_PAIRS);
            ShortVector s1 = s0;
            ShortVector s2 = s0;
            ShortVector s3 = s0;
            for (int k = 0; k < GROUPS; k++) {
                ShortVector low = pairs(in.pairs[pair + k]);
                ShortVector high = pairs(in.pairs[pair + GROUPS + k]);
                s0 = multiplyAdd(s0, group(t0, k), low, high);
                s1 = multiplyAdd(s1, group(t1, k), low, high);
                s2 = multiplyAdd(s2, group(t2, k), low, high);
                s3 = multiplyAdd(s3, group(t3, k), low, high);
            }
            s0.intoArray(scratch, 0);
            s1.intoArray(scratch, 2 * TILE_ROWS);
            s2.intoArray(scratch, 4 * TILE_ROWS);
            s3.intoArray(scratch, 6 * TILE_ROWS);
            scaleGroupInto(t0, tileIndex, in, t, b, lanes);
            if (hasMins) {
                minGroupInto(tileIndex, in, t, b);
            }
        }
        if (hasMins) {
            for (int at = 0; at < ROW_GROUP; at += TILE_ROWS) {
                FloatVector.fromArray(FLOATS, lanes, at).add(FloatVector.fromArray(FLOATS, in.minScratch, at))
                        .intoArray(lanes, at);
            }
        }
    }

    /**
     * {@link #scaleInto} for the four tiles' sums in {@code in.shortScratch}, the first tile's block
     * at {@code tileBlock}. NOTE: the min terms are a third method ({@link #minGroupInto}): in this
     * one, Q4_K's scales and mins together were more than C2 inlines, and its vectors were boxed
     * (JFR: {@code AbstractVector.convert0} under {@code mins}).
     */
    private void scaleGroupInto(long tileBlock, int tile, RoundedInputs in, int t, int b, float[] lanes) {
        for (int g = 0; g < GROUP_TILES; g++, tileBlock += tileBytes) {
            ShortVector sums = ShortVector.fromArray(ROW_PAIRS, in.shortScratch, g * 2 * TILE_ROWS);
            int at = g * TILE_ROWS;
            scaleInto(sums, tileBlock, tile + g, in, t, b, FloatVector.fromArray(FLOATS, lanes, at)).intoArray(lanes, at);
        }
    }

    /** {@link #minInto} for the four tiles from {@code tile}, carried in {@code in.minScratch}. */
    private void minGroupInto(int tile, RoundedInputs in, int t, int b) {
        for (int g = 0; g < GROUP_TILES; g++) {
            int at = g * TILE_ROWS;
            minInto(tile + g, in, t, b, FloatVector.fromArray(FLOATS, in.minScratch, at)).intoArray(in.minScratch, at);
        }
    }

    /** The decoded path's second chain: each input's min terms over all blocks, added to its sums. */
    @Override
    void addMinTerms(int tile, int pairTiles, Inputs inputs, int n, float[] accs) {
        if (!hasMins) {
            return;
        }
        RoundedInputs in = (RoundedInputs) inputs;
        float[] tileMins = new float[blocksPerRow * TILE_ROWS];
        for (int p = 0; p < pairTiles; p++) {
            for (int b = 0; b < blocksPerRow; b++) {
                mins(tile + p, b).intoArray(tileMins, b * TILE_ROWS);
            }
            for (int t = 0; t < n; t++) {
                FloatVector mins = FloatVector.zero(FLOATS);
                for (int b = 0; b < blocksPerRow; b++) {
                    mins = FloatVector.fromArray(FLOATS, tileMins, b * TILE_ROWS)
                            .fma(FloatVector.broadcast(FLOATS, in.minWeights[t * blocksPerRow + b]), mins);
                }
                int at = t * 2 * TILE_ROWS + p * TILE_ROWS;
                FloatVector.fromArray(FLOATS, accs, at).add(mins).intoArray(accs, at);
            }
        }
    }

    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        for (int b = 0, v = at; b < blocks; b++, tile += BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            for (int k = 0; k < GROUPS; k++) {
                // lane i: row i's bytes 2k (bits 0-7) and 2k + 1 (bits 8-15); bits 16-31 are sign
                // copies, masked off (a sign extension compiles well; ZERO_EXTEND_S2I was boxed)
                IntVector bytes = (IntVector) loadShorts(tiles, tile + HEADER_BYTES + (long) k * GROUP_BYTES)
                        .convertShape(VectorOperators.S2I, INTS, 0);
                ((FloatVector) bytes.and(0x0F).sub(offset).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + 2 * k * TILE_ROWS);
                ((FloatVector) bytes.lanewise(VectorOperators.LSHR, 8).and(0x0F).sub(offset).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + (2 * k + 1) * TILE_ROWS);
                ((FloatVector) bytes.lanewise(VectorOperators.LSHR, 4).and(0x0F).sub(offset).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + (2 * k + 16) * TILE_ROWS);
                ((FloatVector) bytes.lanewise(VectorOperators.LSHR, 12).and(0x0F).sub(offset).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + (2 * k + 17) * TILE_ROWS);
            }
        }
    }
}
