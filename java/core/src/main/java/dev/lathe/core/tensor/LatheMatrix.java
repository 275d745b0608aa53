package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/** What the matrices in Lathe's own formats share: name, shape, format and the row-major blocks. */
abstract sealed class LatheMatrix implements WeightMatrix permits Int8ChannelMatrix, IntGroupMatrix, Nf4Matrix {
    static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    final String name;
    final LatheFormat format;
    final int rows;
    final int cols;
    final MemorySegment data; // [rows, rowBytes]
    final long rowBytes;

    LatheMatrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        this.name = Objects.requireNonNull(name, "name");
        this.format = format;
        this.rows = rows;
        this.cols = cols;
        this.data = data;
        this.rowBytes = format.rowBytes(cols);
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final GgmlType type() {
        throw new UnsupportedOperationException(name + " is stored as " + format.name()
                + ", a Lathe format, not a ggml type: dispatch on format()");
    }

    @Override
    public final WeightFormat format() {
        return format;
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

    final long rowOffset(int row) {
        Objects.checkIndex(row, rows);
        return row * rowBytes;
    }

    final void checkInput(float[] x, int xOffset) {
        Objects.checkFromIndexSize(xOffset, cols, x.length);
    }

    /**
     * The prefill path: each row's groups are decoded once per four input vectors by
     * {@link #dot4}; leftover inputs go through {@link #dot}.
     */
    // NOTE: the same driver as MappedMatrix.dotRows (a loop, not a kernel); kept separate so the
    // ggml formats' sealed hierarchy stays as it is.
    @Override
    public void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                        float[] out, int outOffset, int outStride) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows);
        if (n <= 0) {
            return;
        }
        Objects.checkFromIndexSize(0, (long) (n - 1) * xStride + cols, x.length);
        Objects.checkFromIndexSize(0, (long) (n - 1) * outStride + outOffset + rowEnd, out.length);
        float[] sums = new float[4];
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

    /** {@code sums[k] = dot(row, x, xOffset + k * xStride)} for {@code k < 4}; bounds checked by the caller. */
    abstract void dot4(int row, float[] x, int xOffset, int xStride, float[] sums);
}
