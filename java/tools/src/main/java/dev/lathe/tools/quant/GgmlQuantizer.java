package dev.lathe.tools.quant;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightEncoder;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Writes f32 rows as ggml blocks by ggml's reference algorithms: F32/F16/BF16/Q8_0/Q4_0 through
 * core's {@link WeightEncoder}, Q4_K, Q5_K and Q6_K through {@link KQuantizer}.
 */
public final class GgmlQuantizer {
    private GgmlQuantizer() {
    }

    /** True for the types this class can write. */
    public static boolean canWrite(GgmlType type) {
        return type == GgmlType.Q4_K || type == GgmlType.Q5_K || type == GgmlType.Q6_K || WeightEncoder.canEncode(type);
    }

    /** Encodes one row of {@code cols} values at {@code src[srcOffset..]} into {@code dst[dstOffset..]}. */
    public static void quantizeRow(GgmlType type, float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        switch (type) {
            case Q4_K -> KQuantizer.quantizeRowQ4K(src, srcOffset, cols, dst, dstOffset);
            case Q5_K -> KQuantizer.quantizeRowQ5K(src, srcOffset, cols, dst, dstOffset);
            case Q6_K -> KQuantizer.quantizeRowQ6K(src, srcOffset, cols, dst, dstOffset);
            default -> WeightEncoder.encodeRow(type, src, srcOffset, cols, dst, dstOffset);
        }
    }

    /** The row-major matrix {@code values [rows, cols]} as {@code type} blocks in a new segment of {@code arena}. */
    public static MemorySegment quantize(GgmlType type, float[] values, int rows, int cols, Arena arena) {
        if (rows < 0 || cols < 0 || (long) rows * cols != values.length) {
            throw new IllegalArgumentException("shape [" + rows + ", " + cols + "] does not match " + values.length + " values");
        }
        if (!canWrite(type)) {
            throw new IllegalArgumentException("Lathe cannot write " + type + " weights");
        }
        if (cols % type.blockSize != 0) {
            throw new IllegalArgumentException("a row of " + cols + " values is not a whole number of " + type
                    + " blocks of " + type.blockSize);
        }
        long rowBytes = type.bytesFor(cols, "a row of " + cols + " values");
        MemorySegment out = arena.allocate(Math.max(1, rowBytes * rows), 8).asSlice(0, rowBytes * rows);
        for (int r = 0; r < rows; r++) {
            quantizeRow(type, values, r * cols, cols, out, r * rowBytes);
        }
        return out;
    }
}
