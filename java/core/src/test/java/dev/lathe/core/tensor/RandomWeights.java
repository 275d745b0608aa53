package dev.lathe.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/** Random but well-formed weight data for any supported format, placed at an odd address. */
final class RandomWeights {
    private RandomWeights() {
    }

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Offsets of the f16 scale fields inside one block, per format: random bytes there would be
     * NaN or huge, so they get sane values; every other byte of a block is any bit pattern.
     */
    static int[] halfFields(GgmlType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q5_0 -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q6_K -> new int[] {208};
            default -> new int[0];
        };
    }

    /**
     * A matrix {@code [rows, cols]} of {@code type} with random content, in a segment that starts
     * one byte past an aligned address (GGUF data has no alignment promise within a tensor).
     */
    static MemorySegment matrix(GgmlType type, int rows, int cols, Random random, Arena arena) {
        long size = type.bytesFor(cols, "test") * rows;
        MemorySegment data = arena.allocate(size + 1, 16).asSlice(1, size);
        switch (type) {
            case F32 -> {
                for (long i = 0; i < size / 4; i++) {
                    data.set(FLOAT, 4 * i, random.nextFloat() * 2 - 1);
                }
            }
            case F16 -> {
                for (long i = 0; i < size / 2; i++) {
                    data.set(HALF, 2 * i, Float.floatToFloat16(interestingFloat(random)));
                }
            }
            case BF16 -> {
                for (long i = 0; i < size / 2; i++) {
                    data.set(HALF, 2 * i, Bf16Matrix.toBf16(interestingFloat(random)));
                }
            }
            default -> {
                byte[] bytes = new byte[(int) size];
                random.nextBytes(bytes);
                MemorySegment.copy(MemorySegment.ofArray(bytes), 0, data, 0, size);
                for (long block = 0; block < size; block += type.blockBytes) {
                    for (int field : halfFields(type)) {
                        float scale = (0.001f + random.nextFloat() * 0.1f) * (random.nextBoolean() ? 1 : -1);
                        data.set(HALF, block + field, Float.floatToFloat16(scale));
                    }
                }
            }
        }
        return data;
    }

    /** Mostly ordinary values in [-2, 2], with some f16 subnormals and exact zeros mixed in. */
    static float interestingFloat(Random random) {
        return switch (random.nextInt(16)) {
            case 0 -> 0f;
            case 1 -> (random.nextFloat() - 0.5f) * 1e-5f; // f16 subnormal range (< 6.1e-5)
            default -> random.nextFloat() * 4 - 2;
        };
    }

    static float[] vector(int n, Random random) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = random.nextFloat() * 2 - 1;
        }
        return x;
    }
}
