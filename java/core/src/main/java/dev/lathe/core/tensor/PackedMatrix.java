package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * What every in-place weight matrix shares, ggml's formats ({@link MappedMatrix}) and Lathe's own
 * ({@link LatheMatrix}) alike: the name, the shape, the packed rows in a {@link MemorySegment},
 * the little-endian scalar layouts for reading block headers, and the prefill driver that runs
 * each format's four-input kernel over a range of rows.
 */
abstract sealed class PackedMatrix implements WeightMatrix permits MappedMatrix, LatheMatrix {

    // NOTE: GGUF data is little-endian and a block's fields sit at any byte offset (a Q8_0 block
    // is 34 bytes), so every scalar read is an unaligned little-endian read.
    static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    final String name;
    final int rows;
    final int cols;
    final MemorySegment data; // [rows, rowBytes] the format's packed rows
    final long rowBytes;

    /** NOTE: calls {@link #format()}, so a subclass must have its format before this runs. */
    PackedMatrix(String name, int rows, int cols, MemorySegment data) {
        this.name = Objects.requireNonNull(name, "name");
        this.rows = rows;
        this.cols = cols;
        this.data = data;
        this.rowBytes = switch (format()) {
            case GgmlType type -> type.bytesFor(cols, name);
            case LatheFormat lathe -> lathe.rowBytes(cols);
        };
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

    /** Byte offset of {@code row}'s first byte in {@link #data}. */
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

    /** The bounds {@link #dotRows} requires of its arguments; false when there is nothing to do ({@code n <= 0}). */
    final boolean checkDotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                               float[] out, int outOffset, int outStride) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows);
        if (n <= 0) {
            return false;
        }
        Objects.checkFromIndexSize(0, (long) (n - 1) * xStride + cols, x.length);
        Objects.checkFromIndexSize(0, (long) (n - 1) * outStride + outOffset + rowEnd, out.length);
        return true;
    }

    /**
     * The prefill path: each row is decoded once per group of four inputs by {@link #dot4};
     * leftover inputs go through {@link #dot}.
     */
    @Override
    public void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                        float[] out, int outOffset, int outStride) {
        if (checkDotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride)) {
            dot4Rows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
        }
    }

    /** {@link #dotRows} by {@link #dot4}, arguments already checked. */
    final void dot4Rows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                        float[] out, int outOffset, int outStride) {
        float[] sums = new float[4]; // one small array per call, not per row
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

    /**
     * {@code sums[k] = dot(row, x, xOffset + k * xStride)} for {@code k < 4}, reading the row
     * once. Bounds are checked by the caller.
     */
    abstract void dot4(int row, float[] x, int xOffset, int xStride, float[] sums);
}
