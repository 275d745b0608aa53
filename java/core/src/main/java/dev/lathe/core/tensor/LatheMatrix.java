package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;

/** A matrix in one of Lathe's own formats ({@link LatheFormat}): packed rows, no ggml type. */
abstract sealed class LatheMatrix extends PackedMatrix
        permits Int8ChannelMatrix, IntGroupMatrix, LowBitGroupMatrix, ActOrderIntGroupMatrix, Nf4Matrix, Sparse24Matrix {
    final LatheFormat format;

    LatheMatrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        this.format = format; // before super(): PackedMatrix sizes rows from format()
        super(name, rows, cols, data);
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
}
