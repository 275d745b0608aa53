package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/**
 * The 2:4 formats: kernels against the dense reference (the original f32 values for F16, the
 * dequantized row for INT4), the exact bytes of the layout the CUDA kernel reads, and the errors.
 */
class Sparse24Test {
    private static final int[] ROWS = {1, 3, 17, 111};

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> shapes = Stream.builder();
        for (LatheFormat f : new LatheFormat[] {LatheFormat.sparse24F16(), LatheFormat.sparse24Int4(64, true),
            LatheFormat.sparse24Int4(128, false)}) {
            int unit = f.kind() == LatheFormat.Kind.SPARSE24_F16 ? 32 : f.groupSize();
            for (int c : new int[] {unit, 3 * unit, 13 * unit}) {
                for (int r : ROWS) {
                    shapes.add(Arguments.of(f, r, c));
                }
            }
        }
        return shapes.build();
    }

    /** Gaussian values with a random 2 of every 4 zeroed (and now and then a third: a group may keep fewer). */
    static float[] random24(Random random, int rows, int cols) {
        float[] w = new float[rows * cols];
        for (int g = 0; g < rows * cols / 4; g++) {
            int a = random.nextInt(4);
            int b = (a + 1 + random.nextInt(3)) % 4;
            w[4 * g + a] = (float) random.nextGaussian() * 0.05f;
            w[4 * g + b] = random.nextInt(10) == 0 ? 0 : (float) random.nextGaussian() * 0.05f;
        }
        return w;
    }

    /**
     * F16: dequantizeRow must give the f16-rounded originals exactly. Dot products: the kernels sum
     * in f32 in another order than the double reference; 4e-5 of max|w| * sum|x| bounds it (as
     * LatheFormatsTest, whose derivation is in DotKernelsTest).
     */
    @ParameterizedTest
    @MethodSource("shapes")
    void dotAndDotRowsMatchTheDenseReference(LatheFormat format, int rows, int cols) {
        Random random = TestRandom.create("sparse24 " + format + " " + rows + "x" + cols);
        float[] values = random24(random, rows, cols);
        int n = 6; // one group of four inputs and two leftovers
        float[] x = new float[n * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = LatheEncoder.encode(format, values, rows, cols, arena);
            WeightMatrix w = WeightMatrices.of("w", format, rows, cols, data);
            assertEquals(data.byteSize(), w.byteSize());
            float[] out = new float[n * rows];
            Arrays.fill(out, Float.NaN); // poisoned: every slot must be written
            w.dotRows(0, rows, x, cols, n, out, 0, rows);
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                Arrays.fill(row, Float.NaN);
                w.dequantizeRow(r, row, 0);
                double maxW = 0;
                for (int i = 0; i < cols; i++) {
                    float original = values[r * cols + i];
                    if (format.kind() == LatheFormat.Kind.SPARSE24_F16) {
                        assertEquals(Float.float16ToFloat(Float.floatToFloat16(original)), row[i], "row " + r + " col " + i);
                    } else if (original == 0) {
                        assertEquals(0f, row[i], "a pruned weight stays exactly 0: row " + r + " col " + i);
                    }
                    maxW = Math.max(maxW, Math.abs(row[i]));
                }
                for (int t = 0; t < n; t++) {
                    double expected = 0;
                    double sumAbsX = 0;
                    for (int i = 0; i < cols; i++) {
                        expected += (double) row[i] * x[t * cols + i];
                        sumAbsX += Math.abs(x[t * cols + i]);
                    }
                    double tolerance = 4e-5 * maxW * sumAbsX + 1e-30;
                    assertEquals(expected, w.dot(r, x, t * cols), tolerance, "dot row " + r + " input " + t);
                    assertEquals(expected, out[t * rows + r], tolerance, "dotRows row " + r + " input " + t);
                }
            }
        }
    }

    /**
     * The F16 bytes by hand, from kernels/sparse/sparse24_gemv.cuh's comment: values [rows, cols/2]
     * f16 in column order per group, then meta [rows, cols/32] int32, nibble g of word j = group
     * 8j+g, bits 0-1 first column, bits 2-3 second.
     */
    @Test
    void f16BytesAreTheCudaKernelsLayout() {
        int rows = 2;
        int cols = 32;
        float[] w = new float[rows * cols];
        int[][] keptPerGroup = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}, {1, 3}, {0, 2}};
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < 8; g++) {
                int[] k = keptPerGroup[(g + r) % 8];
                w[r * cols + 4 * g + k[0]] = 1 + g + 10 * r;
                w[r * cols + 4 * g + k[1]] = -(1 + g + 10 * r);
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = LatheEncoder.encode(LatheFormat.sparse24F16(), w, rows, cols, arena);
            assertEquals(rows * cols / 2 * 2 + rows * cols / 32 * 4, data.byteSize());
            ValueLayout.OfShort half = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            ValueLayout.OfInt word = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            for (int r = 0; r < rows; r++) {
                int expectedMeta = 0;
                for (int g = 0; g < 8; g++) {
                    int[] k = keptPerGroup[(g + r) % 8];
                    long at = 2L * (r * (cols / 2) + 2 * g);
                    assertEquals(1 + g + 10 * r, Float.float16ToFloat(data.get(half, at)));
                    assertEquals(-(1 + g + 10 * r), Float.float16ToFloat(data.get(half, at + 2)));
                    expectedMeta |= (k[0] | k[1] << 2) << (4 * g);
                }
                assertEquals(expectedMeta, data.get(word, rows * cols + 4L * r), "meta word of row " + r);
            }
        }
    }

    @Test
    void denseOrMisshapenInputIsRejected() {
        try (Arena arena = Arena.ofConfined()) {
            float[] dense = new float[32];
            Arrays.fill(dense, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LatheEncoder.encode(LatheFormat.sparse24F16(), dense, 1, 32, arena));
            assertTrue(e.getMessage().contains("not 2:4"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> LatheEncoder.encode(LatheFormat.sparse24F16(), new float[48], 1, 48, arena));
            assertThrows(IllegalArgumentException.class, () -> LatheFormat.sparse24Int4(32, true));
            assertThrows(IllegalArgumentException.class,
                    () -> LatheEncoder.encodeRow(LatheFormat.sparse24F16(), new float[32], 0, 32, arena.allocate(64), 0));
        }
    }

    @Test
    void specStringsRoundTrip() {
        for (LatheFormat f : new LatheFormat[] {LatheFormat.sparse24F16(), LatheFormat.sparse24Int4(128, true),
            LatheFormat.sparse24Int4(64, false)}) {
            assertEquals(f, LatheFormat.parse(f.spec(), "test"));
        }
        assertEquals(9.0, LatheFormat.sparse24F16().bitsPerWeight(4096), 1e-9);
    }
}
