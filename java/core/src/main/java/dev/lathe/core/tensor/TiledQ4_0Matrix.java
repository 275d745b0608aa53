package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.halvesToFloats;
import static dev.lathe.core.tensor.BlockLanes.loadShorts;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q4_0 in {@link RowTiledMatrix}'s tiles, multiplied in integers against inputs rounded to 8 bits,
 * as llama.cpp does (its Q4_0 dot products read the activations as Q8_0).
 *
 * <p>Inputs: each block of 32 values is rounded to {@code q = rint(x * 127 / amax)}, with step
 * {@code amax / 127} ({@link #round}). A (row, input) product is then, block by block in order,
 * {@code acc = fma(float(sum over the block of (nibble - 8) * q), d * step, acc)}: the block's sum
 * is an exact integer (at most 32 * 8 * 127 in magnitude), so the integer kernels for single
 * inputs and the float kernels over decoded tiles for batches get the same bits.
 *
 * <p>A tile's block: {@code f16 d[TILE_ROWS]}, then 8 groups of {@code 2 * TILE_ROWS} bytes.
 * Group k holds ggml's bytes 2k and 2k + 1 of each row side by side (row i at bytes 2i, 2i + 1):
 * zero-extended to 16-bit lanes, lane 2i + p is row i's byte 2k + p, whose low nibble is column
 * 2k + p and high nibble column 2k + 16 + p. An int broadcast of two rounded inputs (columns 2k,
 * 2k + 1) then lines up with the low nibbles lane for lane, and one of columns 2k + 16, 2k + 17
 * with the high ones. 288 bytes at 16 rows: the file's bytes, moved.
 *
 * <p>NOTE: why integers: the float kernel (nibbles widened to 32-bit lanes, shifted, converted,
 * one FMA per 16 weights) was compute-bound, 0.56 of a plain sum over the same bytes at two
 * threads. Here one 16-bit multiply covers 32 weights. Measured (a /tmp harness, 180 MB of tiles
 * from memory, two threads, the same run): float 9.4-9.8 GB/s, this kernel 14.4-16.5, a plain
 * vector sum 18.6-20.4. The products fit 16 bits: 16 per lane per block, each at most 15 * 127
 * (unsigned nibbles; the -8 comes back once per block as {@code -8 * sum of q}).
 */
final class TiledQ4_0Matrix extends RowTiledMatrix {
    private static final int SCALES_BYTES = 2 * TILE_ROWS;
    private static final int GROUPS = BLOCK / 4;
    private static final int GROUP_BYTES = 2 * TILE_ROWS;
    private static final int BLOCK_BYTES = SCALES_BYTES + GROUPS * GROUP_BYTES;
    private static final int ROUNDED_MAX = 127;
    /** 1.5 * 2^23: x + this - this is x rounded to the nearest integer, ties to even, for |x| < 2^22. */
    private static final float ROUND = 0x1.8p23f;
    /** Two rows' worth of bytes (one group) and of 16-bit lanes (a whole vector). */
    private static final VectorSpecies<Byte> GROUP = VectorSpecies.of(byte.class, VectorShape.forBitSize(GROUP_BYTES * Byte.SIZE));
    private static final VectorSpecies<Short> ROW_PAIRS = VectorSpecies.of(short.class, FLOATS.vectorShape());

    TiledQ4_0Matrix(WeightMatrix source, Arena arena) {
        super(source, BLOCK_BYTES, true, arena);
    }

    @Override
    long sourceBlockBytes() {
        return Q4_0Matrix.BLOCK_BYTES;
    }

    @Override
    void packBlock(MemorySegment from, long block, long tileBlock, int lane) {
        tiles.set(PackedMatrix.HALF, tileBlock + 2L * lane, from.get(PackedMatrix.HALF, block));
        for (int k = 0; k < GROUPS; k++) {
            // ggml's bytes 2k and 2k + 1 stay side by side: one 16-bit copy
            tiles.set(PackedMatrix.HALF, tileBlock + SCALES_BYTES + (long) k * GROUP_BYTES + 2 * lane,
                    from.get(PackedMatrix.HALF, block + 2 + 2 * k));
        }
    }

    /** The inputs rounded to 8 bits per block, in the forms the kernels read. */
    static final class RoundedInputs extends Inputs {
        /** Per input, the rounded values as 16-bit pairs: int {@code [t * cols / 2 + c / 2]} holds columns c (low half) and c + 1. */
        final int[] pairs;
        /** Per input and block, the sum of its rounded values. */
        final int[] sums;
        /** A group of tiles' 16-bit sums, between the two halves of {@link #groupDot}. */
        final short[] scratch = new short[GROUP_TILES * 2 * TILE_ROWS];

        RoundedInputs(float[] values, int stride, float[] steps, int[] pairs, int[] sums) {
            super(values, 0, stride, steps);
            this.pairs = pairs;
            this.sums = sums;
        }
    }

    @Override
    Inputs inputs(float[] x, int offset, int stride, int n) {
        return round(x, offset, stride, n, blocksPerRow, n < DECODE_MIN_INPUTS);
    }

    /**
     * {@code n} inputs of {@code blocks * 32} values each, from {@code x[offset + t * stride]}, rounded
     * block by block: step {@code amax / 127}, {@code q = rint(x * (127 / amax))} (0 where amax is 0).
     * A NaN input makes its block's step NaN, and so its products. The pairs and sums the integer
     * kernels read are filled only {@code forIntegerKernels}; the decoded tiles read the values.
     */
    static RoundedInputs round(float[] x, int offset, int stride, int n, int blocks, boolean forIntegerKernels) {
        int cols = blocks * BLOCK;
        float[] values = new float[n * cols];
        float[] steps = new float[n * blocks];
        int[] pairs = forIntegerKernels ? new int[n * cols / 2] : null;
        int[] sums = forIntegerKernels ? new int[n * blocks] : null;
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
                if (forIntegerKernels) {
                    int sum = 0;
                    for (int c = to; c < to + BLOCK; c += 2) {
                        int even = (int) values[c];
                        int odd = (int) values[c + 1];
                        pairs[c / 2] = even & 0xFFFF | odd << 16;
                        sum += even + odd;
                    }
                    sums[t * blocks + b] = sum;
                }
            }
        }
        return new RoundedInputs(values, cols, steps, pairs, sums);
    }

    /** Group k of a tile block as 16-bit lanes: lane 2i + p is row i's byte 2k + p. */
    private ShortVector group(long tileBlock, int k) {
        return (ShortVector) ByteVector.fromMemorySegment(GROUP, tiles, tileBlock + SCALES_BYTES + (long) k * GROUP_BYTES,
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
     * A block's 16-bit sums (two per row) added per row, less {@code 8 * sum of the inputs}: the
     * block's exact integer products, scaled into {@code acc}.
     */
    private FloatVector scaleInto(ShortVector sums, long tileBlock, RoundedInputs in, int t, int b, FloatVector acc) {
        IntVector pairsOfSums = sums.reinterpretAsInts();
        IntVector total = pairsOfSums.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                .add(pairsOfSums.lanewise(VectorOperators.ASHR, 16))
                .sub(8 * in.sums[t * blocksPerRow + b]);
        return ((FloatVector) total.convert(VectorOperators.I2F, 0)).fma(blockScale(tileBlock, in, t, b), acc);
    }

    @Override
    void tileDot(long tile, Inputs inputs, int t, float[] lanes, int at) {
        RoundedInputs in = (RoundedInputs) inputs;
        FloatVector acc = FloatVector.zero(FLOATS);
        int pair = t * blocksPerRow * BLOCK / 2;
        for (int b = 0; b < blocksPerRow; b++, tile += BLOCK_BYTES, pair += BLOCK / 2) {
            ShortVector s = ShortVector.zero(ROW_PAIRS);
            for (int k = 0; k < GROUPS; k++) {
                s = multiplyAdd(s, group(tile, k), pairs(in.pairs[pair + k]), pairs(in.pairs[pair + GROUPS + k]));
            }
            acc = scaleInto(s, tile, in, t, b, acc);
        }
        acc.intoArray(lanes, at);
    }

    /**
     * NOTE: the four tiles' 16-bit sums go through {@code in.scratch} to {@link #scaleGroupInto}, a
     * second method: with the scaling written in the same loop, it was more than C2 inlines in one
     * method, and the vectors were boxed (a /tmp harness: 2 vs 14-16 GB/s). Four tiles, not two:
     * four memory streams (two: 11.8-13.3 GB/s in the same runs).
     */
    @Override
    void groupDot(long tile, Inputs inputs, int t, float[] lanes) {
        RoundedInputs in = (RoundedInputs) inputs;
        short[] scratch = in.scratch;
        long t0 = tile;
        long t1 = t0 + tileBytes;
        long t2 = t1 + tileBytes;
        long t3 = t2 + tileBytes;
        java.util.Arrays.fill(lanes, 0, ROW_GROUP, 0f);
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
            scaleGroupInto(t0, in, t, b, lanes);
        }
    }

    /** {@link #scaleInto} for the four tiles' sums in {@code in.scratch}, the first tile's block at {@code tileBlock}. */
    private void scaleGroupInto(long tileBlock, RoundedInputs in, int t, int b, float[] lanes) {
        for (int g = 0; g < GROUP_TILES; g++, tileBlock += tileBytes) {
            ShortVector sums = ShortVector.fromArray(ROW_PAIRS, in.scratch, g * 2 * TILE_ROWS);
            int at = g * TILE_ROWS;
            scaleInto(sums, tileBlock, in, t, b, FloatVector.fromArray(FLOATS, lanes, at)).intoArray(lanes, at);
        }
    }

    /** The file's f16 scales, widened (once per block and tile, outside the products' inner loop). */
    @Override
    FloatVector scales(long tileBlock) {
        return halvesToFloats(loadShorts(tiles, tileBlock));
    }

    @Override
    void decodeBlocks(long tile, int blocks, float[] values, int at) {
        for (int b = 0, v = at; b < blocks; b++, tile += BLOCK_BYTES, v += BLOCK * TILE_ROWS) {
            for (int k = 0; k < GROUPS; k++) {
                // lane i: row i's bytes 2k (bits 0-7) and 2k + 1 (bits 8-15); bits 16-31 are sign
                // copies, masked off (a sign extension compiles well; ZERO_EXTEND_S2I was boxed)
                IntVector bytes = (IntVector) loadShorts(tiles, tile + SCALES_BYTES + (long) k * GROUP_BYTES)
                        .convertShape(VectorOperators.S2I, INTS, 0);
                ((FloatVector) bytes.and(0x0F).sub(8).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + 2 * k * TILE_ROWS);
                ((FloatVector) bytes.lanewise(VectorOperators.LSHR, 8).and(0x0F).sub(8).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + (2 * k + 1) * TILE_ROWS);
                ((FloatVector) bytes.lanewise(VectorOperators.LSHR, 4).and(0x0F).sub(8).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + (2 * k + 16) * TILE_ROWS);
                ((FloatVector) bytes.lanewise(VectorOperators.LSHR, 12).and(0x0F).sub(8).convert(VectorOperators.I2F, 0))
                        .intoArray(values, v + (2 * k + 17) * TILE_ROWS);
            }
        }
    }
}
