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
}
