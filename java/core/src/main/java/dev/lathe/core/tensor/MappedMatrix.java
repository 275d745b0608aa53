package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A matrix in one of ggml's block formats ({@link GgmlType}): rows of whole blocks. Instances come
 * from {@link WeightMatrices#of}, which has already checked the shape against the segment's size.
 */
abstract sealed class MappedMatrix extends PackedMatrix
        permits F32Matrix, F16Matrix, Bf16Matrix, Q8_0Matrix, Q4_0Matrix, Q4_1Matrix, Q5_0Matrix,
        Q5_1Matrix, Q4_KMatrix, Q5_KMatrix, Q6_KMatrix {

    final int blocksPerRow;

    MappedMatrix(String name, int rows, int cols, MemorySegment data) {
        super(name, rows, cols, data);
        this.blocksPerRow = cols / type().blockSize;
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
        if (!checkDotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride)) {
            return;
        }
        if (n >= DEQUANTIZE_ONCE_MIN_INPUTS && hasVectorDequantizer()) {
            dequantizeOnceDotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
        } else {
            dot4Rows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
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
}
