package dev.lathe.core.gguf;

import dev.lathe.core.tensor.GgmlType;

import java.util.Arrays;

/**
 * One tensor's entry in a GGUF file.
 *
 * @param name       tensor name
 * @param type       storage type
 * @param dims       ggml order: {@code dims[0]} is the contiguous (row) length, e.g. a weight
 *                   {@code [out, in]} is stored with {@code dims = {in, out}}
 * @param fileOffset absolute offset of the first byte in the file
 * @param byteSize   bytes the tensor occupies
 */
public record GgufTensorInfo(String name, GgmlType type, long[] dims, long fileOffset, long byteSize) {

    public long elementCount() {
        long n = 1;
        for (long d : dims) {
            n *= d; // cannot overflow: checked when the file was read
        }
        return n;
    }

    /** Values per row ({@code dims[0]}). */
    public long rowLength() {
        return dims[0];
    }

    /** Rows: the product of every dimension after the first. */
    public long rowCount() {
        return elementCount() / dims[0];
    }

    /** Shape in the usual row-major order, outermost first, e.g. {@code [32000, 4096]}. */
    public String shapeString() {
        long[] rowMajor = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            rowMajor[i] = dims[dims.length - 1 - i];
        }
        return Arrays.toString(rowMajor);
    }
}
