package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * What every format's matrix shares: the name, the shape, the blocks in a {@link MemorySegment}
 * and the little-endian scalar layouts for reading block headers. Instances come from
 * {@link WeightMatrices#of}, which has already checked the shape against the segment's size.
 */
abstract sealed class MappedMatrix implements WeightMatrix
        permits F32Matrix, F16Matrix, Bf16Matrix, Q8_0Matrix, Q4_0Matrix, Q4_1Matrix, Q5_0Matrix,
        Q5_1Matrix, Q4_KMatrix, Q5_KMatrix, Q6_KMatrix {

    // NOTE: GGUF data is little-endian and a block's fields sit at any byte offset (a Q8_0 block
    // is 34 bytes), so every scalar read is an unaligned little-endian read.
    static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    final String name;
    final int rows;
    final int cols;
    final MemorySegment data; // [rows, rowBytes] the format's blocks
    final long rowBytes;
    final int blocksPerRow;

    MappedMatrix(String name, int rows, int cols, MemorySegment data) {
        this.name = Objects.requireNonNull(name, "name");
        this.rows = rows;
        this.cols = cols;
        this.data = data;
        this.rowBytes = type().bytesFor(cols, name);
        this.blocksPerRow = cols / type().blockSize;
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final int rows() {
        return rows;
    }

    @Override
    public final int cols() {
        return cols;
    }

    @Override
    public final MemorySegment data() {
        return data;
    }

    @Override
    public final long rowBytes() {
        return rowBytes;
    }

    /** Byte offset of {@code row}'s first block in {@link #data}. */
    final long rowOffset(int row) {
        Objects.checkIndex(row, rows);
        return row * rowBytes;
    }

    /** The f16 at {@code offset}, as a float (block scales: one per block, so scalar is fine). */
    final float half(long offset) {
        return Float.float16ToFloat(data.get(HALF, offset));
    }

    final void checkInput(float[] x, int xOffset) {
        Objects.checkFromIndexSize(xOffset, cols, x.length);
    }

    /**
     * Inputs from which {@link #dotRows} dequantizes each row once (per tile of inputs) and runs
     * dense f32 products, when the format has a vector dequantizer.
     * NOTE: below it the block kernels' {@link #dot4} wins: decoding a row costs about as much as
     * a few products with it, so it only pays when many inputs share it (batched decode, prefill).
     */
    static final int DEQUANTIZE_ONCE_MIN_INPUTS = 8;
    /**
     * Inputs per tile on the dequantize-once path: a tile of x ({@code 64 * cols} floats, 256 KB
     * at cols 1024) stays in L2 while every row of the slice streams past it once.
     */
    static final int INPUT_TILE = 64;

    /**
     * Many inputs: with a vector dequantizer ({@link #dequantizeRowVector}) and at least
     * {@link #DEQUANTIZE_ONCE_MIN_INPUTS} inputs, each row is decoded to f32 once per tile of
     * {@link #INPUT_TILE} inputs and multiplied densely ({@link DenseRows}); otherwise each row's
     * blocks are decoded once per group of four inputs by {@link #dot4}, and leftover inputs go
     * through {@link #dot}.
     */
    @Override
    public void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                        float[] out, int outOffset, int outStride) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows);
        if (n <= 0) {
            return;
        }
        Objects.checkFromIndexSize(0, (long) (n - 1) * xStride + cols, x.length);
        Objects.checkFromIndexSize(0, (long) (n - 1) * outStride + outOffset + rowEnd, out.length);
        float[] sums = new float[4]; // one small array per call, not per row
        if (n >= DEQUANTIZE_ONCE_MIN_INPUTS && hasVectorDequantizer()) {
            dequantizeOnceDotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
            return;
        }
        for (int r = rowStart; r < rowEnd; r++) {
            int t = 0;
            for (; t + 4 <= n; t += 4) {
                dot4(r, x, t * xStride, xStride, sums);
                for (int k = 0; k < 4; k++) {
                    out[(t + k) * outStride + outOffset + r] = sums[k];
                }
            }
            for (; t < n; t++) {
                out[t * outStride + outOffset + r] = dot(r, x, t * xStride);
            }
        }
    }

    private void dequantizeOnceDotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                                       float[] out, int outOffset, int outStride) {
        float[] w = new float[4 * cols]; // four decoded rows, one after another
        float[] row = new float[cols];
        float[] sums = new float[16];
        for (int tile = 0; tile < n; tile += INPUT_TILE) {
            int tileEnd = Math.min(n, tile + INPUT_TILE);
            int r = rowStart;
            for (; r + 4 <= rowEnd; r += 4) {
                for (int j = 0; j < 4; j++) {
                    dequantizeRowVector(r + j, w, j * cols);
                }
                int t = tile;
                for (; t + 4 <= tileEnd; t += 4) {
                    DenseRows.dot4x4(w, cols, x, t * xStride, xStride, sums);
                    for (int j = 0; j < 4; j++) {
                        for (int k = 0; k < 4; k++) {
                            out[(t + k) * outStride + outOffset + r + j] = sums[4 * j + k];
                        }
                    }
                }
                for (; t < tileEnd; t++) {
                    for (int j = 0; j < 4; j++) {
                        out[t * outStride + outOffset + r + j] = DenseRows.dot(w, j * cols, cols, x, t * xStride);
                    }
                }
            }
            for (; r < rowEnd; r++) {
                dequantizeRowVector(r, row, 0);
                int t = tile;
                for (; t + 4 <= tileEnd; t += 4) {
                    DenseRows.dot4(row, cols, x, t * xStride, xStride, sums);
                    for (int k = 0; k < 4; k++) {
                        out[(t + k) * outStride + outOffset + r] = sums[k];
                    }
                }
                for (; t < tileEnd; t++) {
                    out[t * outStride + outOffset + r] = DenseRows.dot(row, 0, cols, x, t * xStride);
                }
            }
        }
    }

    /** Whether {@link #dequantizeRowVector} is implemented (formats opt in). */
    boolean hasVectorDequantizer() {
        return false;
    }

    /** Row {@code row} as f32 into {@code out[outOffset, outOffset + cols)}, with vector code; the same values as {@link #dequantizeRow}. */
    void dequantizeRowVector(int row, float[] out, int outOffset) {
        dequantizeRow(row, out, outOffset);
    }

    /**
     * {@code sums[k] = dot(row, x, xOffset + k * xStride)} for {@code k < 4}, reading the row's
     * blocks once. Bounds are checked by the caller.
     */
    abstract void dot4(int row, float[] x, int xOffset, int xStride, float[] sums);
}
