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
    /** A tile block of the 4-bit formats; Q5_K's carry its fifth bits after the nibbles ({@link TiledQ4_KMatrix}). */
    static final int BLOCK_BYTES = HEADER_BYTES + GROUPS * GROUP_BYTES;
    private static final int ROUNDED_MAX = 127;
    /** 1.5 * 2^23: x + this - this is x rounded to the nearest integer, ties to even, for |x| < 2^22. */
    private static final float ROUND = 0x1.8p23f;
    /** Two rows' worth of bytes (one group) and of 16-bit lanes (a whole vector). */
    static final VectorSpecies<Byte> GROUP = VectorSpecies.of(byte.class, VectorShape.forBitSize(GROUP_BYTES * Byte.SIZE));
    static final VectorSpecies<Short> ROW_PAIRS = VectorSpecies.of(short.class, FLOATS.vectorShape());

    /** A value is {@code scale * (nibble - offset)} (less the block's min, if it has one). */
    private final int offset;
    /** Whether blocks have mins (Q4_K): {@link #mins} and the second chain of sums. */
    private final boolean hasMins;

    /** {@code blockBytes}: {@link #BLOCK_BYTES}, or more for a format that keeps more after the nibbles. */
    TiledNibbleMatrix(WeightMatrix source, Arena arena, int offset, boolean hasMins, int blockBytes) {
        super(source, blockBytes, true, arena);
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
        /** Per input and block, the sum of its rounded values (null where no kernel needs them). */
        final int[] sums;
        /** Per input and block, {@code -(step * sum of its rounded values)}: what a block's min is multiplied by (or null). */
        final float[] minWeights;
        /** A group of tiles' 16-bit sums, between the two halves of {@link #groupDot}. */
        final short[] shortScratch = new short[GROUP_TILES * 2 * TILE_ROWS];
        /** A group of tiles' min terms, carried through {@link #groupDot}. */
        final float[] minScratch = new float[ROW_GROUP];

        RoundedInputs(float[] values, int stride, int count, float[] steps, int[] pairs, int[] sums, float[] minWeights) {
            super(values, 0, stride, count, steps);
            this.pairs = pairs;
            this.sums = sums;
            this.minWeights = minWeights;
        }

        /** The same rounded inputs with this thread's own scratch arrays. */
        @Override
        RoundedInputs forOneThread() {
            return new RoundedInputs(values, stride, count, blockScales, pairs, sums, minWeights);
        }
    }

    @Override
    Inputs inputs(float[] x, int offset, int stride, int n) {
        boolean integerKernels = n < DECODE_MIN_INPUTS;
        return round(x, offset, stride, n, blocksPerRow, integerKernels, integerKernels || hasMins);
    }

    /**
     * {@code n} inputs of {@code blocks * 32} values each, from {@code x[offset + t * stride]}, rounded
     * block by block: step {@code amax / 127}, {@code q = rint(x * (127 / amax))} (0 where amax is 0).
     * A NaN input makes its block's step NaN, and so its products. The pairs the integer kernels
     * read are filled only {@code forIntegerKernels} (the decoded tiles read the values), the
     * blocks' sums (for Q4_0's offset and Q4_K's mins) only {@code withSums}.
     * NOTE: a batch of 32 spent 9% of its decode here while every block's sum was taken.
     */
    static RoundedInputs round(float[] x, int offset, int stride, int n, int blocks, boolean forIntegerKernels,
                               boolean withSums) {
        int cols = blocks * BLOCK;
        float[] values = new float[n * cols];
        float[] steps = new float[n * blocks];
        int[] pairs = forIntegerKernels ? new int[n * cols / 2] : null;
        int[] sums = withSums ? new int[n * blocks] : null;
        float[] minWeights = withSums ? new float[n * blocks] : null;
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
                if (withSums) {
                    int sum = 0;
                    for (int c = to; c < to + BLOCK; c++) {
                        sum += (int) values[c];
                    }
                    sums[t * blocks + b] = sum;
                    minWeights[t * blocks + b] = -(steps[t * blocks + b] * sum);
                }
                if (forIntegerKernels) {
                    for (int c = to; c < to + BLOCK; c += 2) {
                        pairs[c / 2] = (int) values[c] & 0xFFFF | (int) values[c + 1] << 16;
                    }
                }
            }
        }
        return new RoundedInputs(values, cols, n, steps, pairs, sums, minWeights);
    }

    /*
     * NOTE (C2): the inner loops below are written out, with no helper methods of ours. A helper
     * that takes or returns vectors is inlined only while it has no standalone compiled code
     * larger than InlineSmallCode; which happens first depends on the run. In one batch bench out
     * of three, groupDot was compiled with its multiply-add helper out of line, its vectors were
     * boxed, and batch-1 decode ran at 8-9 tok/s instead of 70-100 (JFR: ShortVector.add and
     * VectorSupport.binaryOp under the helper).
     */

    @Override
    void tileDot(long tile, Inputs inputs, int t, float[] lanes, int at) {
        RoundedInputs in = (RoundedInputs) inputs;
        int tileIndex = (int) (tile / tileBytes);
        java.util.Arrays.fill(lanes, at, at + TILE_ROWS, 0f);
        java.util.Arrays.fill(in.minScratch, 0, TILE_ROWS, 0f);
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, tile += BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector s = ShortVector.zero(ROW_PAIRS);
            for (int k = 0; k < GROUPS; k++) {
                ShortVector low = IntVector.broadcast(INTS, in.pairs[pair + k]).reinterpretAsShorts();
                ShortVector high = IntVector.broadcast(INTS, in.pairs[pair + GROUPS + k]).reinterpretAsShorts();
                ShortVector w = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles,
                        tile + HEADER_BYTES + (long) k * GROUP_BYTES, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, ROW_PAIRS, 0);
                s = s.add(w.and((short) 0x0F).mul(low)).add(w.lanewise(VectorOperators.LSHR, 4).mul(high));
            }
            s.intoArray(in.shortScratch, 0);
            scaleTilesInto(tile, tileIndex, 1, in, t, b, lanes, at);
            if (hasMins) {
                minTilesInto(tileIndex, 1, in, t, b);
            }
        }
        addMins(1, in, lanes, at);
    }

    /**
     * Zero-extended to 16-bit lanes, group k of a tile block has lane 2i + p = row i's byte 2k + p;
     * an int broadcast of a pair of rounded inputs puts the first in the even lanes. So one
     * 16-bit multiply-add per nibble half covers 32 weights.
     */
    @Override
    void groupDot(long tile, Inputs inputs, int t, float[] lanes) {
        RoundedInputs in = (RoundedInputs) inputs;
        short[] scratch = in.shortScratch;
        int tileIndex = (int) (tile / tileBytes);
        long t0 = tile + HEADER_BYTES;
        long t1 = t0 + tileBytes;
        long t2 = t1 + tileBytes;
        long t3 = t2 + tileBytes;
        java.util.Arrays.fill(lanes, 0, ROW_GROUP, 0f);
        java.util.Arrays.fill(in.minScratch, 0f);
        ByteOrder le = ByteOrder.LITTLE_ENDIAN;
        VectorOperators.Conversion<Byte, Short> widen = VectorOperators.ZERO_EXTEND_B2S;
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, pair += BLOCK / 2,
                t0 += BLOCK_BYTES, t1 += BLOCK_BYTES, t2 += BLOCK_BYTES, t3 += BLOCK_BYTES) {
            ShortVector s0 = ShortVector.zero(ROW_PAIRS);
            ShortVector s1 = s0;
            ShortVector s2 = s0;
            ShortVector s3 = s0;
            for (int k = 0; k < GROUPS; k++) {
                ShortVector low = IntVector.broadcast(INTS, in.pairs[pair + k]).reinterpretAsShorts();
                ShortVector high = IntVector.broadcast(INTS, in.pairs[pair + GROUPS + k]).reinterpretAsShorts();
                long g = (long) k * GROUP_BYTES;
                ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t0 + g, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t1 + g, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector w2 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t2 + g, le).convertShape(widen, ROW_PAIRS, 0);
                ShortVector w3 = (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, t3 + g, le).convertShape(widen, ROW_PAIRS, 0);
                s0 = s0.add(w0.and((short) 0x0F).mul(low)).add(w0.lanewise(VectorOperators.LSHR, 4).mul(high));
                s1 = s1.add(w1.and((short) 0x0F).mul(low)).add(w1.lanewise(VectorOperators.LSHR, 4).mul(high));
                s2 = s2.add(w2.and((short) 0x0F).mul(low)).add(w2.lanewise(VectorOperators.LSHR, 4).mul(high));
                s3 = s3.add(w3.and((short) 0x0F).mul(low)).add(w3.lanewise(VectorOperators.LSHR, 4).mul(high));
            }
            s0.intoArray(scratch, 0);
            s1.intoArray(scratch, 2 * TILE_ROWS);
            s2.intoArray(scratch, 4 * TILE_ROWS);
            s3.intoArray(scratch, 6 * TILE_ROWS);
            scaleTilesInto(t0 - HEADER_BYTES, tileIndex, GROUP_TILES, in, t, b, lanes, 0);
            if (hasMins) {
                minTilesInto(tileIndex, GROUP_TILES, in, t, b);
            }
        }
        addMins(GROUP_TILES, in, lanes, 0);
    }

    /**
     * For {@code count} tiles from {@code tile} (block b at {@code tileBlock}), their 16-bit sums in
     * {@code in.shortScratch} (two per row) added per row, less {@code offset * sum of the inputs}:
     * the block's exact integer products, scaled and added to {@code lanes[at + g * TILE_ROWS..]}.
     * NOTE: a second method: in the loops above it was more than C2 inlines in one method.
     */
    final void scaleTilesInto(long tileBlock, int tile, int count, RoundedInputs in, int t, int b, float[] lanes, int at) {
        for (int g = 0; g < count; g++, tileBlock += tileBytes, at += TILE_ROWS) {
            IntVector pairsOfSums = ShortVector.fromArray(ROW_PAIRS, in.shortScratch, g * 2 * TILE_ROWS).reinterpretAsInts();
            IntVector total = pairsOfSums.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                    .add(pairsOfSums.lanewise(VectorOperators.ASHR, 16));
            if (offset != 0) {
                total = total.sub(offset * in.sums[t * blocksPerRow + b]);
            }
            ((FloatVector) total.convert(VectorOperators.I2F, 0))
                    .fma(blockScale(tileBlock, tile + g, in, t, b), FloatVector.fromArray(FLOATS, lanes, at))
                    .intoArray(lanes, at);
        }
    }

    /**
     * The min terms of block b of {@code count} tiles from {@code tile} for input t, each tile's
     * chain carried in {@code in.minScratch[g * TILE_ROWS..]}. NOTE: a third method: with Q4_K's
     * scales and mins together, {@link #scaleTilesInto} was more than C2 inlines, and its vectors
     * were boxed (JFR: {@code AbstractVector.convert0} under {@code mins}).
     */
    final void minTilesInto(int tile, int count, RoundedInputs in, int t, int b) {
        FloatVector weight = FloatVector.broadcast(FLOATS, in.minWeights[t * blocksPerRow + b]);
        for (int g = 0; g < count; g++) {
            int at = g * TILE_ROWS;
            mins(tile + g, b).fma(weight, FloatVector.fromArray(FLOATS, in.minScratch, at)).intoArray(in.minScratch, at);
        }
    }

    /** Adds the min chains of {@code count} tiles to their sums at {@code lanes[at..]}, once all blocks are in. */
    final void addMins(int count, RoundedInputs in, float[] lanes, int at) {
        if (!hasMins) {
            return;
        }
        for (int g = 0; g < count; g++, at += TILE_ROWS) {
            FloatVector.fromArray(FLOATS, lanes, at).add(FloatVector.fromArray(FLOATS, in.minScratch, g * TILE_ROWS))
                    .intoArray(lanes, at);
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
