package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import dev.lathe.core.concurrent.Parallel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;

/**
 * A Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16 or BF16 matrix re-laid once, at load, for the CPU's matrix products: rows in tiles
 * of {@link BlockLanes#LANES} (16 with AVX-512), and within a tile, for each block of 32 columns,
 * the tile's block scales (the quantized formats) followed by its values column by column
 * ({@code [column][row in tile]}). One vector load is then one column of a whole tile, so a tile's
 * dot products build up lane by lane, one lane per row: no horizontal sums, and one block scale
 * per lane applied by one FMA.
 *
 * <p>NOTE: measured (a /tmp harness, one thread, 1024-column Q8_0 rows, 180 MB from memory, the
 * same run): ggml's layout, rows in pairs, 5.2-5.4 GB/s; this layout with four tiles walked
 * together 9.6-10.4 GB/s; a plain vector sum over the same bytes 11.8-12.9 GB/s. In cache: 14 vs
 * 21-24 GB/s. Two things make the difference: the kernel needs about a third fewer instructions
 * per weight byte (so more bytes are in flight per out-of-order window), and four tiles are four
 * streams 17 KB apart, which the hardware prefetchers follow independently. Q8_0's scales are
 * f32, not the file's f16: widening f16 lanes in the four-tile loop made it more than C2 inlines
 * in one method (the same harness: 7.5-8 GB/s in cache), so Q8_0 reads 1.125 bytes per weight
 * instead of 1.0625. The 4-bit formats scale their blocks in a second method ({@link TiledNibbleMatrix}):
 * Q4_0 keeps the f16 scales, and its tiles are the file's bytes. Memory: the tiles are a second copy of these weights, in native
 * memory; the file's pages, read once to build them, stay in the page cache but are clean.
 *
 * <p>NOTE (C2): every kernel here is written so that one method's vector code stays within what
 * C2 inlines (NodeCountInliningCutoff); past it, a call is left out and its vectors are boxed on
 * the heap, 3-5x slower, with no error. F16 therefore walks its four tiles as two pairs, and the
 * 4-bit formats scale their blocks' sums in separate methods.
 * A JFR profile showing {@code AbstractVector.convert0} or {@code VectorSupport.*Op} frames under
 * a kernel is the sign; the F16 widening was rewritten once for it.
 *
 * <p>The source matrix stays the answer to everything but the products: {@link #type()},
 * {@link #data()} (ggml's blocks, for whoever reads the raw format) and {@link #dequantizeRow}
 * delegate to it. Products are bit-identical however they are grouped: a (row, input) pair's sum
 * is always one FMA chain over the block's columns in order, scaled into one accumulator over the
 * blocks in order, whether its input came alone or among many, its row in one tile or a group of
 * four, the tile decoded to floats first or not. So a sequence's logits do not depend on how
 * many others share its batch. (Q4_0, Q4_K, Q5_K and Q6_K sum a block in integers against inputs rounded
 * to 8 bits: those sums are exact, so the order does not matter there; {@link TiledNibbleMatrix},
 * {@link TiledQ6_KMatrix}.)
 */
public abstract sealed class RowTiledMatrix implements WeightMatrix
        permits TiledQ8_0Matrix, TiledNibbleMatrix, TiledQ6_KMatrix, TiledHalfMatrix {
    /** Rows per tile: one vector lane per row. */
    static final int TILE_ROWS = LANES;
    /** Tiles one single-input pass walks together (independent FMA chains and memory streams). */
    static final int GROUP_TILES = 4;
    /** Rows a thread's share should be a multiple of: {@link #GROUP_TILES} whole tiles. */
    public static final int ROW_GROUP = TILE_ROWS * GROUP_TILES;
    static final int BLOCK = 32;
    /**
     * Inputs from which the tiles are decoded to floats (in chunks) once and shared by all inputs;
     * below it each input walks the tiles on its own.
     * NOTE: one 2816 x 1024 matrix, one thread, us (decoded vs walked): 2 inputs Q4_0 490-750 vs
     * 380-490, Q8_0 520-640 vs 270-400; 3 inputs Q4_0 580-730 vs 815-870, Q8_0 630-800 vs 405-450;
     * 4 inputs Q4_0 470 vs 730-750, Q8_0 485-560 vs 570-670, F16 640-960 vs 1040-1060.
     */
    static final int DECODE_MIN_INPUTS = 4;
    /**
     * Blocks per decoded chunk: two tiles' 256 columns as floats are 32 KB, which stay in L1
     * while every input reads them.
     */
    static final int CHUNK_BLOCKS = 8;

    final WeightMatrix source;
    final int blocksPerRow;
    final long tileBlockBytes; // one block of one tile: TILE_ROWS scales (if scaled), then the format's values
    /** Whether blocks carry scales: a block's sum goes into the accumulator by {@code fma(s, d, acc)}, else {@code acc + s}. */
    final boolean scaled;
    final long tileBytes;
    final MemorySegment tiles; // [rows / TILE_ROWS, blocksPerRow, tileBlockBytes]

    RowTiledMatrix(WeightMatrix source, long tileBlockBytes, boolean scaled, Arena arena) {
        this.source = source;
        this.scaled = scaled;
        this.blocksPerRow = source.cols() / BLOCK;
        this.tileBlockBytes = tileBlockBytes;
        this.tileBytes = blocksPerRow * tileBlockBytes;
        // A last, partial tile is padded with zero rows (arena memory starts zeroed): their lanes
        // are computed and never copied out, so a vocabulary of 32001 rows is tiled too.
        this.tiles = arena.allocate(tileBytes * ((source.rows() + TILE_ROWS - 1) / TILE_ROWS), 64);
    }

    /**
     * {@code weight} re-laid in tiles allocated from {@code arena} when its format has a tiled kernel
     * (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, BF16, and F16 without large or non-finite values), it has more than one row,
     * and its rows are whole blocks of 32 columns; otherwise {@code weight} itself. The tiles live as long as the arena.
     */
    public static WeightMatrix tile(WeightMatrix weight, Arena arena) {
        return tile(weight, arena, 1);
    }

    /**
     * {@link #tile(WeightMatrix, Arena)}, re-laying the rows on up to {@code threads} threads where
     * both the weight's memory and the arena's may be used from other threads.
     */
    public static WeightMatrix tile(WeightMatrix weight, Arena arena, int threads) {
        // One row is a vector (a norm's weight, a bias): read whole, never multiplied.
        if (weight.rows() < 2 || weight.cols() % BLOCK != 0 || !(weight.format() instanceof GgmlType type)) {
            return weight;
        }
        RowTiledMatrix tiled = switch (type) {
            case Q8_0 -> new TiledQ8_0Matrix(weight, arena);
            case Q4_0 -> new TiledQ4_0Matrix(weight, arena);
            case Q4_K -> new TiledQ4_KMatrix(weight, arena);
            case Q5_K -> new TiledQ4_KMatrix(weight, arena);
            case Q6_K -> new TiledQ6_KMatrix(weight, arena);
            case F16 -> TiledHalfMatrix.fits(weight) ? new TiledHalfMatrix(weight, arena) : null;
            case BF16 -> new TiledHalfMatrix(weight, arena);
            default -> null;
        };
        if (tiled == null) {
            return weight;
        }
        tiled.repack(threads);
        return tiled;
    }

    @Override
    public final String name() {
        return source.name();
    }

    @Override
    public final GgmlType type() {
        return source.type();
    }

    @Override
    public final int rows() {
        return source.rows();
    }

    @Override
    public final int cols() {
        return source.cols();
    }

    @Override
    public final MemorySegment data() {
        return source.data();
    }

    @Override
    public final void dequantizeRow(int row, float[] out, int outOffset) {
        source.dequantizeRow(row, out, outOffset);
    }

    /** Bytes the products read: the tiles (more than {@link #byteSize()}, the source's, by Q8_0's f32 scales and a last tile's padding). */
    public long tiledBytes() {
        return tiles.byteSize();
    }

    /** Computes the row's whole tile and returns its lane: slow, and bit-identical to {@link #dotRows}. */
    @Override
    public final float dot(int row, float[] x, int xOffset) {
        Objects.checkIndex(row, rows());
        Objects.checkFromIndexSize(xOffset, cols(), x.length);
        float[] lanes = new float[TILE_ROWS];
        tileDot(tileOffset(row / TILE_ROWS), inputs(x, xOffset, cols(), 1), 0, lanes, 0);
        return lanes[row % TILE_ROWS];
    }

    @Override
    public final void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                              float[] out, int outOffset, int outStride) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows());
        if (n <= 0 || rowStart == rowEnd) {
            return;
        }
        dotRows(prepare(x, xStride, n), rowStart, rowEnd, out, outOffset, outStride);
    }

    /**
     * {@code n} inputs of {@code x}, {@code xStride} apart, prepared once as this format's kernels
     * read them (Q4_0 and Q4_K: rounded to 8 bits) for any number of
     * {@link #dotRows(Inputs, int, int, float[], int, int)} calls on row ranges, from any threads.
     * NOTE: the backend prepares a matmul's inputs before it splits the rows over threads. With
     * each of two threads rounding all the inputs itself, rounding took 5.0% of a batch-32 Q4_0
     * decode's samples (JFR); prepared once, 1.8%.
     */
    public final Inputs prepare(float[] x, int xStride, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("at least one input, got " + n);
        }
        Objects.checkFromIndexSize(0, (long) (n - 1) * xStride + cols(), x.length);
        return inputs(x, 0, xStride, n);
    }

    /** {@link #dotRows(int, int, float[], int, int, float[], int, int)} for inputs {@link #prepare}d by this matrix. */
    public final void dotRows(Inputs prepared, int rowStart, int rowEnd, float[] out, int outOffset, int outStride) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows());
        int n = prepared.count;
        Objects.checkFromIndexSize(0, (long) (n - 1) * outStride + outOffset + rowEnd, out.length);
        if (rowStart == rowEnd) {
            return;
        }
        Inputs in = prepared.forOneThread();
        // The kernels write whole tiles' lanes to scratch arrays; the rows inside [rowStart, rowEnd)
        // are then copied out (a thread's share starts and ends on tile boundaries in practice).
        int firstTile = rowStart / TILE_ROWS;
        int endTile = (rowEnd + TILE_ROWS - 1) / TILE_ROWS;
        if (n < DECODE_MIN_INPUTS) {
            float[] lanes = new float[ROW_GROUP]; // a group of tiles' sums for one input
            // Decode: each input walks groups of tiles (four weight streams at once).
            for (int tile = firstTile; tile < endTile; tile += GROUP_TILES) {
                int groupTiles = Math.min(GROUP_TILES, endTile - tile);
                for (int t = 0; t < n; t++) {
                    if (groupTiles == GROUP_TILES) {
                        groupDot(tileOffset(tile), in, t, lanes);
                    } else {
                        for (int g = 0; g < groupTiles; g++) {
                            tileDot(tileOffset(tile + g), in, t, lanes, g * TILE_ROWS);
                        }
                    }
                    copyLanes(lanes, 0, tile, groupTiles, rowStart, rowEnd, out, t * outStride + outOffset);
                }
            }
            return;
        }
        // Batches and prefill: tiles in pairs; a chunk of their blocks is decoded to floats once,
        // then read by every input while it sits in L1, each input's sums carried in accs.
        int chunk = Math.min(blocksPerRow, CHUNK_BLOCKS);
        int chunkValues = chunk * BLOCK * TILE_ROWS;
        float[] values = new float[2 * chunkValues];
        float[] decodedScales = new float[2 * chunk * TILE_ROWS]; // the pair's block scales, widened once per chunk
        float[] accs = new float[n * 2 * TILE_ROWS]; // input t: the pair's first tile's lanes, then the second's
        for (int tile = firstTile; tile < endTile; tile += 2) {
            int pairTiles = Math.min(2, endTile - tile);
            java.util.Arrays.fill(accs, 0f);
            for (int b = 0; b < blocksPerRow; b += chunk) {
                int blocks = Math.min(chunk, blocksPerRow - b);
                long first = tileOffset(tile) + b * tileBlockBytes;
                long second = first + tileBytes;
                decodeBlocks(first, blocks, values, 0);
                if (scaled) {
                    decodeScales(first, tile, b, blocks, decodedScales, 0);
                }
                if (pairTiles == 2) {
                    decodeBlocks(second, blocks, values, chunkValues);
                    if (scaled) {
                        decodeScales(second, tile + 1, b, blocks, decodedScales, chunk * TILE_ROWS);
                    }
                }
                int t = 0;
                if (pairTiles == 2) {
                    for (; t + 4 <= n; t += 4) {
                        decodedPairDot4(values, chunkValues, decodedScales, chunk * TILE_ROWS, blocks, in.values,
                                in.at(t) + b * BLOCK, in.stride, in.blockScales, t * blocksPerRow + b, blocksPerRow,
                                accs, t * 2 * TILE_ROWS);
                    }
                }
                for (; t < n; t++) {
                    decodedDot(values, 0, decodedScales, 0, b, blocks, in, t, accs, t * 2 * TILE_ROWS);
                    if (pairTiles == 2) {
                        decodedDot(values, chunkValues, decodedScales, chunk * TILE_ROWS, b, blocks, in, t, accs,
                                t * 2 * TILE_ROWS + TILE_ROWS);
                    }
                }
            }
            addMinTerms(tile, pairTiles, in, n, accs);
            for (int t = 0; t < n; t++) {
                copyLanes(accs, t * 2 * TILE_ROWS, tile, pairTiles, rowStart, rowEnd, out, t * outStride + outOffset);
            }
        }
    }

    /**
     * One product's inputs as the kernels read them: input t's values are {@code values[at(t)..]}.
     * Where a format multiplies in integers (Q4_0), its inputs are first rounded to 8 bits per
     * block of 32 values: {@code values} then holds those integers, and block b of input t is
     * worth {@code values * blockScales[t * blocksPerRow + b]}.
     */
    public static class Inputs {
        final float[] values;
        final int offset;
        final int stride;
        /** How many inputs. */
        final int count;
        /** Per input and block, the step of the 8-bit rounding; null where the values are the caller's floats. */
        final float[] blockScales;

        Inputs(float[] values, int offset, int stride, int count, float[] blockScales) {
            this.values = values;
            this.offset = offset;
            this.stride = stride;
            this.count = count;
            this.blockScales = blockScales;
        }

        final int at(int t) {
            return offset + t * stride;
        }

        /** These inputs with the working space one thread's kernels write (none here). */
        Inputs forOneThread() {
            return this;
        }
    }

    /**
     * {@code n} inputs of {@code x} from {@code offset}, {@code stride} apart, as this format's
     * kernels read them: by default, as they are.
     */
    Inputs inputs(float[] x, int offset, int stride, int n) {
        return new Inputs(x, offset, stride, n, null);
    }

    /** Copies the lanes of tiles {@code [tile, tile + groupTiles)} that fall in {@code [rowStart, rowEnd)} to {@code out[at + row]}. */
    private static void copyLanes(float[] lanes, int lanesAt, int tile, int groupTiles, int rowStart, int rowEnd,
                                  float[] out, int at) {
        int first = Math.max(rowStart, tile * TILE_ROWS);
        int end = Math.min(rowEnd, (tile + groupTiles) * TILE_ROWS);
        System.arraycopy(lanes, lanesAt + first - tile * TILE_ROWS, out, at + first, end - first);
    }

    /**
     * Writes block {@code block} (32 values) of the source row starting at byte {@code row} of
     * {@code from} into its tile block at {@code tileBlock}, at the row's lane; {@code tile} is the
     * row's tile.
     */
    abstract void packBlock(MemorySegment from, long row, int block, long tileBlock, int tile, int lane);

    /**
     * Fills the tiles from the source, tile by tile, on up to {@code threads} threads.
     * NOTE: one thread re-lays 0.3-0.7 GB/s here (Q8_0 0.56-0.71, Q4_0 0.3), so a 4 GB model takes
     * seconds to load; the tiles are independent, so this spreads them over the backend's threads.
     */
    private void repack(int threads) {
        MemorySegment from = source.data();
        Thread other = Thread.ofVirtual().unstarted(() -> { });
        // a weight or arena confined to this thread (a tool's own, a test's) is re-laid here alone
        int usable = from.isAccessibleBy(other) && tiles.isAccessibleBy(other) ? threads : 1;
        long rowBytes = source.rowBytes();
        int rows = source.rows();
        Parallel.forRange((rows + TILE_ROWS - 1) / TILE_ROWS, usable, (firstTile, endTile) -> {
            for (int row = firstTile * TILE_ROWS; row < Math.min(rows, endTile * TILE_ROWS); row++) {
                int tile = row / TILE_ROWS;
                long tileBlock = tileOffset(tile);
                for (int b = 0; b < blocksPerRow; b++, tileBlock += tileBlockBytes) {
                    packBlock(from, row * rowBytes, b, tileBlock, tile, row % TILE_ROWS);
                }
            }
        });
    }

    final long tileOffset(int tile) {
        return tile * tileBytes;
    }

    /** One tile, input t: {@code lanes[at + i] = dot(tile row i, input t)}. */
    abstract void tileDot(long tile, Inputs in, int t, float[] lanes, int at);

    /**
     * {@link #GROUP_TILES} consecutive tiles from {@code tile}, input t:
     * {@code lanes[g * TILE_ROWS + i]} for tile {@code g}; the same sums as four {@link #tileDot}s.
     */
    abstract void groupDot(long tile, Inputs in, int t, float[] lanes);

    /**
     * {@code blocks} blocks of one tile, from the one at {@code tileBlock}, as floats, exactly:
     * {@code values[at + (b * 32 + c) * TILE_ROWS + i]} is row i's value in column c of block b,
     * before the block scale. For Q4_0 these are small integers, and so are its rounded inputs:
     * every sum of a block is then exact, and equal to the integer kernels' sums.
     */
    abstract void decodeBlocks(long tileBlock, int blocks, float[] values, int at);

    /** The {@link #TILE_ROWS} scales of block {@code block} of tile {@code tile}, at {@code tileBlock} (scaled formats). */
    abstract FloatVector scales(long tileBlock, int tile, int block);

    /**
     * {@link #scales} of {@code blocks} blocks of tile {@code tile} from block {@code block} (at
     * {@code tileBlock}), to {@code out[at + k * TILE_ROWS..]}. NOTE: each concrete class writes
     * this loop itself: called from {@link #dotRows}, shared by every format, {@code scales} was
     * not inlined, and its vectors were boxed (JFR: a quarter of a batch-8 decode's samples in
     * {@code AbstractVector.convert0}).
     */
    abstract void decodeScales(long tileBlock, int tile, int block, int blocks, float[] out, int at);

    /**
     * For formats whose values carry a per-block offset (Q4_K's mins): adds each input's offset
     * terms to the sums of the pair of tiles from {@code tile} ({@code accs} as in the decoded
     * path of {@link #dotRows}), once their blocks are all summed. Others have none.
     */
    void addMinTerms(int tile, int pairTiles, Inputs in, int n, float[] accs) {
    }

    /**
     * The scale of block {@code b} of input t: the weights' block scales times, for rounded
     * inputs, the input's step. Every kernel scales a block's sum with this expression (the
     * decoded ones write it out, from {@link #decodeScales}).
     */
    final FloatVector blockScale(long tileBlock, int tile, Inputs in, int t, int b) {
        FloatVector d = scales(tileBlock, tile, b);
        return in.blockScales == null ? d : d.mul(in.blockScales[t * blocksPerRow + b]);
    }

    /**
     * {@link #tileDot} over {@code blocks} decoded blocks (at {@code values[v..]}, their scales at
     * {@code scales[scalesAt..]}, {@link #TILE_ROWS} per block) of one tile, block {@code firstBlock}
     * on, for input t, carrying the sums in {@code accs[at..at + TILE_ROWS)}.
     */
    private void decodedDot(float[] values, int v, float[] scales, int scalesAt, int firstBlock, int blocks, Inputs in,
                            int t, float[] accs, int at) {
        float[] x = in.values;
        FloatVector acc = FloatVector.fromArray(FLOATS, accs, at);
        for (int b = 0, xi = in.at(t) + firstBlock * BLOCK; b < blocks; b++, xi += BLOCK) {
            FloatVector s = FloatVector.zero(FLOATS);
            for (int c = 0; c < BLOCK; c++, v += TILE_ROWS) {
                s = FloatVector.fromArray(FLOATS, values, v).fma(FloatVector.broadcast(FLOATS, x[xi + c]), s);
            }
            if (!scaled) {
                acc = acc.add(s);
                continue;
            }
            FloatVector d = FloatVector.fromArray(FLOATS, scales, scalesAt + b * TILE_ROWS);
            acc = s.fma(in.blockScales == null ? d : d.mul(in.blockScales[t * blocksPerRow + firstBlock + b]), acc);
        }
        acc.intoArray(accs, at);
    }

    /**
     * {@link #decodedDot} for two tiles (values at {@code values[0..]} and {@code values[second..]},
     * block scales at {@code scales[0..]} and {@code scales[secondScales..]}, {@link #TILE_ROWS} per
     * block) and four inputs {@code x[xOffset + k * xStride..]};
     * input k's sums at {@code accs[at + 2 * k * TILE_ROWS..]}, first tile then second. For rounded
     * inputs, input k's step for block b is {@code steps[stepsAt + k * stepsStride + b]} (null otherwise).
     * NOTE: eight independent FMA chains: with four (one tile) the FMA latency held the kernel to
     * about half the core's FMA rate. NOTE (C2): the rounded inputs' scales are
     * {@link #blockScale}'s expression written out: called here, it was left out of C2's inlining
     * budget and the vectors were boxed (Q4_0 prefill 28% slower).
     */
    private void decodedPairDot4(float[] values, int second, float[] scales, int secondScales, int blocks,
                                 float[] x, int xOffset, int xStride, float[] steps, int stepsAt, int stepsStride,
                                 float[] accs, int at) {
        int stride = 2 * TILE_ROWS;
        FloatVector a0 = FloatVector.fromArray(FLOATS, accs, at);
        FloatVector b0 = FloatVector.fromArray(FLOATS, accs, at + TILE_ROWS);
        FloatVector a1 = FloatVector.fromArray(FLOATS, accs, at + stride);
        FloatVector b1 = FloatVector.fromArray(FLOATS, accs, at + stride + TILE_ROWS);
        FloatVector a2 = FloatVector.fromArray(FLOATS, accs, at + 2 * stride);
        FloatVector b2 = FloatVector.fromArray(FLOATS, accs, at + 2 * stride + TILE_ROWS);
        FloatVector a3 = FloatVector.fromArray(FLOATS, accs, at + 3 * stride);
        FloatVector b3 = FloatVector.fromArray(FLOATS, accs, at + 3 * stride + TILE_ROWS);
        int x0 = xOffset;
        int x1 = x0 + xStride;
        int x2 = x1 + xStride;
        int x3 = x2 + xStride;
        for (int b = 0, v = 0; b < blocks; b++) {
            FloatVector s0 = FloatVector.zero(FLOATS);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            FloatVector u0 = s0;
            FloatVector u1 = s0;
            FloatVector u2 = s0;
            FloatVector u3 = s0;
            for (int c = 0; c < BLOCK; c++, v += TILE_ROWS) {
                FloatVector w = FloatVector.fromArray(FLOATS, values, v);
                FloatVector w1 = FloatVector.fromArray(FLOATS, values, second + v);
                FloatVector xc = FloatVector.broadcast(FLOATS, x[x0++]);
                s0 = w.fma(xc, s0);
                u0 = w1.fma(xc, u0);
                xc = FloatVector.broadcast(FLOATS, x[x1++]);
                s1 = w.fma(xc, s1);
                u1 = w1.fma(xc, u1);
                xc = FloatVector.broadcast(FLOATS, x[x2++]);
                s2 = w.fma(xc, s2);
                u2 = w1.fma(xc, u2);
                xc = FloatVector.broadcast(FLOATS, x[x3++]);
                s3 = w.fma(xc, s3);
                u3 = w1.fma(xc, u3);
            }
            if (!scaled) {
                a0 = a0.add(s0);
                a1 = a1.add(s1);
                a2 = a2.add(s2);
                a3 = a3.add(s3);
                b0 = b0.add(u0);
                b1 = b1.add(u1);
                b2 = b2.add(u2);
                b3 = b3.add(u3);
            } else if (steps == null) {
                FloatVector d = FloatVector.fromArray(FLOATS, scales, b * TILE_ROWS);
                a0 = s0.fma(d, a0);
                a1 = s1.fma(d, a1);
                a2 = s2.fma(d, a2);
                a3 = s3.fma(d, a3);
                d = FloatVector.fromArray(FLOATS, scales, secondScales + b * TILE_ROWS);
                b0 = u0.fma(d, b0);
                b1 = u1.fma(d, b1);
                b2 = u2.fma(d, b2);
                b3 = u3.fma(d, b3);
            } else {
                // rounded inputs: the tiles' block scales times each input's step
                int step = stepsAt + b;
                FloatVector d = FloatVector.fromArray(FLOATS, scales, b * TILE_ROWS);
                FloatVector e = FloatVector.fromArray(FLOATS, scales, secondScales + b * TILE_ROWS);
                float step0 = steps[step];
                float step1 = steps[step + stepsStride];
                float step2 = steps[step + 2 * stepsStride];
                float step3 = steps[step + 3 * stepsStride];
                a0 = s0.fma(d.mul(step0), a0);
                b0 = u0.fma(e.mul(step0), b0);
                a1 = s1.fma(d.mul(step1), a1);
                b1 = u1.fma(e.mul(step1), b1);
                a2 = s2.fma(d.mul(step2), a2);
                b2 = u2.fma(e.mul(step2), b2);
                a3 = s3.fma(d.mul(step3), a3);
                b3 = u3.fma(e.mul(step3), b3);
            }
        }
        a0.intoArray(accs, at);
        b0.intoArray(accs, at + TILE_ROWS);
        a1.intoArray(accs, at + stride);
        b1.intoArray(accs, at + stride + TILE_ROWS);
        a2.intoArray(accs, at + 2 * stride);
        b2.intoArray(accs, at + 2 * stride + TILE_ROWS);
        a3.intoArray(accs, at + 3 * stride);
        b3.intoArray(accs, at + 3 * stride + TILE_ROWS);
    }
}
