package dev.lathe.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Writes f32 rows in a weight format: the GGUF writer's and the demo model's side of
 * {@link WeightMatrix}. F32, F16 and BF16 are encoded (F16/BF16 round to nearest even); Q8_0 and
 * Q4_0 are quantized with ggml's reference algorithms, so a file written here matches what
 * llama.cpp's quantizer writes for the same values.
 */
public final class WeightEncoder {
    private WeightEncoder() {
    }

    /** True for the types {@link #encodeRow} can write. */
    public static boolean canEncode(GgmlType type) {
        return switch (type) {
            case F32, F16, BF16, Q8_0, Q4_0 -> true;
            default -> false;
        };
    }

    /**
     * Encodes {@code cols} values {@code src[srcOffset ..]} as one row of {@code type}, written at
     * {@code dst[dstOffset ..]} ({@code type.bytesFor(cols)} bytes).
     *
     * @throws IllegalArgumentException when {@code type} cannot be encoded or {@code cols} is not a
     *         whole number of its blocks
     */
    public static void encodeRow(GgmlType type, float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        checkEncodable(type, cols);
        Objects.checkFromIndexSize(srcOffset, cols, src.length);
        Objects.checkFromIndexSize(dstOffset, (long) cols / type.blockSize * type.blockBytes, dst.byteSize());
        switch (type) {
            case F32 -> F32Matrix.encodeRow(src, srcOffset, cols, dst, dstOffset);
            case F16 -> F16Matrix.encodeRow(src, srcOffset, cols, dst, dstOffset);
            case BF16 -> Bf16Matrix.encodeRow(src, srcOffset, cols, dst, dstOffset);
            case Q8_0 -> Q8_0Matrix.quantizeRow(src, srcOffset, cols, dst, dstOffset);
            case Q4_0 -> Q4_0Matrix.quantizeRow(src, srcOffset, cols, dst, dstOffset);
            default -> throw new AssertionError(type);
        }
    }

    private static void checkEncodable(GgmlType type, int cols) {
        if (!canEncode(type)) {
            throw new IllegalArgumentException("Lathe cannot write " + type + " weights (it writes F32, F16, BF16, Q8_0, Q4_0)");
        }
        if (cols < 0 || cols % type.blockSize != 0) {
            throw new IllegalArgumentException(cols + " values are not a whole number of " + type + " blocks of " + type.blockSize);
        }
    }

    /**
     * Encodes the row-major matrix {@code values [rows, cols]} into a new segment of {@code arena}
     * and returns it ({@code rows * type.bytesFor(cols)} bytes).
     */
    public static MemorySegment encode(GgmlType type, float[] values, int rows, int cols, Arena arena) {
        if (rows < 0 || cols < 0 || (long) rows * cols != values.length) {
            throw new IllegalArgumentException("shape [" + rows + ", " + cols + "] does not match " + values.length + " values");
        }
        checkEncodable(type, cols);
        long rowBytes = (long) cols / type.blockSize * type.blockBytes;
        MemorySegment out = arena.allocate(rowBytes * rows, 8);
        for (int r = 0; r < rows; r++) {
            encodeRow(type, values, r * cols, cols, out, r * rowBytes);
        }
        return out;
    }
}
