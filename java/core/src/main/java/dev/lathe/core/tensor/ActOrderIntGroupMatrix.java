package dev.lathe.core.tensor;

import dev.lathe.core.io.ModelFormatException;

import java.lang.foreign.MemorySegment;

/**
 * Group-wise INT whose groups are scattered input columns ({@link LatheFormat.Kind#INT_GROUP_ACT_ORDER}):
 * GPTQ act-order checkpoints ({@code desc_act: true}), where {@code g_idx[k]} names the group of
 * input {@code k} and a group's members lie anywhere along K. The columns are stored reordered so
 * that every group is contiguous, which makes the rows plain INT_GROUP rows ({@link IntGroupMatrix}, or
 * {@link LowBitGroupMatrix} at 2 and 3 bits), and the
 * table after them says which input each stored column holds:
 * {@code dot(r, x) = sum_j W'[r, j] * x[order[j]]}.
 *
 * <p>Kernel: x is gathered by {@code order} once per call (once for all rows and inputs of a
 * {@link #dotRows}), then the INT_GROUP kernel runs unchanged. The gather costs {@code cols}
 * loads per input, against {@code rows * cols} multiply-adds.
 */
// NOTE: reorder-and-gather (what exllama does for act-order) rather than a group index per
// column: the rows stay the INT_GROUP layout, so the one fast kernel serves both, and the only
// new work is the gather. Backends without a gather (CUDA for now) read rows via dequantizeRow.
final class ActOrderIntGroupMatrix extends LatheMatrix {
    private final PackedMatrix stored; // [rows, cols] with columns in group order: IntGroupMatrix or LowBitGroupMatrix
    private final int[] order;           // [cols] input column of each stored column

    ActOrderIntGroupMatrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
        this.stored = (PackedMatrix) WeightMatrices.of(name, format.rowFormat(), rows, cols, data.asSlice(0, (long) rows * rowBytes));
        this.order = readOrder(name, data, (long) rows * rowBytes, cols);
    }

    /** The column table at {@code at}, checked to be a permutation of {@code 0..cols-1}. */
    private static int[] readOrder(String name, MemorySegment data, long at, int cols) {
        int[] order = new int[cols];
        boolean[] seen = new boolean[cols];
        for (int j = 0; j < cols; j++) {
            int column = data.get(INT, at + 4L * j);
            if (column < 0 || column >= cols || seen[column]) {
                throw new ModelFormatException("tensor " + name, "act-order column table entry " + j + " is " + column
                        + ": expected a permutation of 0.." + (cols - 1));
            }
            seen[column] = true;
            order[j] = column;
        }
        return order;
    }

    /** The input column each stored column holds ({@code [cols]}, a copy). */
    int[] order() {
        return order.clone();
    }

    private void gather(float[] x, int xOffset, float[] into, int intoOffset) {
        for (int j = 0; j < cols; j++) {
            into[intoOffset + j] = x[xOffset + order[j]];
        }
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        float[] values = new float[cols];
        stored.dequantizeRow(row, values, 0);
        for (int j = 0; j < cols; j++) {
            out[outOffset + order[j]] = values[j];
        }
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        float[] gathered = new float[cols];
        gather(x, xOffset, gathered, 0);
        return stored.dot(row, gathered, 0);
    }

    @Override
    public void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                        float[] out, int outOffset, int outStride) {
        if (!checkDotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride)) {
            return;
        }
        float[] gathered = new float[n * cols];
        for (int t = 0; t < n; t++) {
            gather(x, t * xStride, gathered, t * cols);
        }
        stored.dotRows(rowStart, rowEnd, gathered, cols, n, out, outOffset, outStride);
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        float[] gathered = new float[4 * cols];
        for (int t = 0; t < 4; t++) {
            gather(x, xOffset + t * xStride, gathered, t * cols);
        }
        stored.dot4(row, gathered, 0, cols, sums);
    }

    /** Row {@code row}'s levels and grids in stored (group) order (see LatheEncoder.unpackIntGroupRow). */
    void unpackRow(int row, byte[] levels, LatheEncoder.Grid[] grids) {
        LatheEncoder.unpackIntGroupRow(stored, row, levels, grids);
    }
}
