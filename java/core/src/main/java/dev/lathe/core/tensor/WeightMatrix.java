package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A weight matrix {@code [rows, cols]} stored row-major in one format's blocks, read in place
 * from a memory-mapped file (never copied into a Java array). Rows are output features; a row
 * is {@code cols} values, a whole number of the format's blocks. A 1-D tensor (a norm's weight)
 * is a matrix with one row.
 *
 * <p>Each format is one small class behind this interface, so the model and the backends never
 * see a block layout. Every fast method has a plain reference in {@link #dequantizeRow}: the
 * tests check {@code dot(r, x)} against {@code sum(dequantizeRow(r)[i] * x[i])}.
 *
 * <p>Instances are immutable views of their data: any number of threads may call any method at
 * once (the CPU backend splits a matrix's rows over threads). Build them with
 * {@link WeightMatrices#of}, which checks the shape against the data; write formats with
 * {@link WeightEncoder}.
 */
public interface WeightMatrix {

    /** The tensor's name in the model file (GGUF naming, e.g. {@code blk.0.attn_q.weight}). */
    String name();

    /**
     * The ggml type of a matrix stored in ggml blocks. Matrices in one of Lathe's own formats
     * throw {@link UnsupportedOperationException}: dispatch on {@link #format()} to handle both.
     */
    GgmlType type();

    /** The storage format: the ggml type, or a {@link LatheFormat}. */
    default WeightFormat format() {
        return type();
    }

    int rows();

    int cols();

    /** The raw blocks, {@code rows * rowBytes()} bytes (double-quant NF4: and its absmax table, {@link #byteSize()}). */
    MemorySegment data();

    /** Bytes of one row. */
    default long rowBytes() {
        return switch (format()) {
            case GgmlType t -> t.bytesFor(cols(), name());
            case LatheFormat f -> f.rowBytes(cols());
        };
    }

    /** Bytes of the whole matrix. */
    default long byteSize() {
        return switch (format()) {
            case GgmlType t -> rowBytes() * rows();
            case LatheFormat f -> f.matrixBytes(rows(), cols());
        };
    }

    /** {@code sum_i W[row, i] * x[xOffset + i]} for {@code i < cols}, computed on the blocks. */
    float dot(int row, float[] x, int xOffset);

    /**
     * Dot products of rows {@code [rowStart, rowEnd)} with {@code n} input vectors:
     * {@code out[t * outStride + outOffset + r] = dot(r, x, t * xStride)}. Formats override this
     * to read each block once for all {@code n} inputs (the prefill path).
     */
    default void dotRows(int rowStart, int rowEnd, float[] x, int xStride, int n,
                         float[] out, int outOffset, int outStride) {
        for (int r = rowStart; r < rowEnd; r++) {
            for (int t = 0; t < n; t++) {
                out[t * outStride + outOffset + r] = dot(r, x, t * xStride);
            }
        }
    }

    /** Writes the {@code cols} values of {@code row}, as f32, to {@code out[outOffset..]}: the reference decoding. */
    void dequantizeRow(int row, float[] out, int outOffset);
}
