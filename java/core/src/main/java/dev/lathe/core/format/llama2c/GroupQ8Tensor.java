package dev.lathe.core.format.llama2c;

import dev.lathe.core.tensor.GgmlType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One matrix of a llama2.c version 2 export: {@code rows * cols} int8 values, flattened row-major,
 * with one f32 scale per {@code groupSize} consecutive values ({@code value = q * scale}). Groups
 * run over the flattened tensor, so when {@code cols} is not a multiple of the group a group spans
 * two rows.
 *
 * <p>Lathe's kernels know ggml Q8_0 (blocks of 32 int8 with an f16 scale), not this layout, so the
 * loader converts each matrix once, into native memory of the model's arena:
 * <ul>
 *   <li>{@link #toQ8_0}: when the group is a multiple of 32 and a row is a whole number of 32-blocks,
 *       every group becomes {@code groupSize / 32} Q8_0 blocks sharing its scale. The int8 values are
 *       kept bit for bit.</li>
 *   <li>{@link #toF32}: otherwise (llama2.c backs the group off to 4 for stories260K, whose
 *       hidden_dim 172 is not a multiple of 64), the exact dequantized values.</li>
 * </ul>
 *
 * @param name      GGUF name
 * @param rows      output features
 * @param cols      input features
 * @param groupSize values per scale
 * @param values    {@code [rows * cols]} int8, in the mapped file
 * @param scales    {@code [rows * cols / groupSize]} little-endian f32, in the mapped file
 */
record GroupQ8Tensor(String name, int rows, int cols, int groupSize, MemorySegment values, MemorySegment scales) {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort F16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int Q8_0_BLOCK = GgmlType.Q8_0.blockSize;
    /** Largest finite f16. */
    private static final float F16_MAX = 65504f;

    long elements() {
        return (long) rows * cols;
    }

    float scale(long group) {
        return scales.getAtIndex(F32_LE, group);
    }

    /** The dequantized value at flat index {@code i}. */
    float value(long i) {
        return values.get(ValueLayout.JAVA_BYTE, i) * scale(i / groupSize);
    }

    /**
     * True when {@link #toQ8_0} keeps every int8 value: whole 32-blocks per group and per row, and every
     * scale representable as a finite f16.
     */
    boolean fitsQ8_0() {
        if (groupSize % Q8_0_BLOCK != 0 || cols % Q8_0_BLOCK != 0) {
            return false;
        }
        long groups = elements() / groupSize;
        for (long g = 0; g < groups; g++) {
            if (!(Math.abs(scale(g)) <= F16_MAX)) {
                return false;
            }
        }
        return true;
    }

    /**
     * The matrix as ggml Q8_0 blocks: {@code [rows * cols / 32]} blocks of {f16 scale, 32 int8}.
     * Requires {@link #fitsQ8_0}.
     */
    // NOTE: the only loss is the f32 scale rounded to f16 (relative error <= 2^-11, ~0.05%), the same
    // rounding every ggml Q8_0 file carries; it buys the Q8_0 kernels (a quarter of the f32 bytes).
    MemorySegment toQ8_0(Arena arena) {
        long blocks = elements() / Q8_0_BLOCK;
        MemorySegment out = arena.allocate(Math.multiplyExact(blocks, (long) GgmlType.Q8_0.blockBytes), 4);
        for (long b = 0; b < blocks; b++) {
            long first = b * Q8_0_BLOCK;
            long at = b * GgmlType.Q8_0.blockBytes;
            out.set(F16_LE, at, Float.floatToFloat16(scale(first / groupSize)));
            MemorySegment.copy(values, first, out, at + 2, Q8_0_BLOCK);
        }
        return out;
    }

    /** The exact dequantized matrix as {@code [rows * cols]} f32, for layouts Q8_0 cannot hold. */
    MemorySegment toF32(Arena arena) {
        long n = elements();
        MemorySegment out = arena.allocate(Math.multiplyExact(n, 4L), 4);
        for (long i = 0; i < n; i++) {
            out.setAtIndex(F32_LE, i, value(i));
        }
        return out;
    }
}
