package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every format's Vector API {@code dot} and {@code dotRows} against the scalar reference:
 * {@link WeightMatrix#dequantizeRow} then a plain dot accumulated in double.
 */
class DotKernelsTest {
    private static final int[] ROWS = {1, 3, 17, 111};

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> shapes = Stream.builder();
        for (GgmlType type : GgmlType.values()) {
            if (!type.supported) {
                continue;
            }
            int[] cols = switch (type.blockSize) {
                case 1 -> TestRandom.AWKWARD_SIZES;
                case 32 -> new int[] {32, 32 * 3, 32 * 17};
                default -> new int[] {256, 256 * 3};
            };
            for (int c : cols) {
                for (int r : ROWS) {
                    shapes.add(Arguments.of(type, r, c));
                }
            }
        }
        return shapes.build();
    }

    /**
     * The tolerance, per format. The kernels sum in f32 in a different order from the reference
     * (lanes, then per block, then across blocks); for n terms that error is below about
     * (n / 16 + 16) * 2^-24 of the sum of the terms' magnitudes, under 3.5e-6 for n <= 769. Every
     * term is at most max|w| * |x_i|, so 1e-5 of max|w| * sum|x| is a safe bound for the plain
     * formats. Formats with a min (Q4_1, Q5_1, Q4_K, Q5_K) sum d*q*x and m*x separately and
     * subtract, so their terms can exceed |w|; with the test data's scales (d and dmin of the same
     * order) they stay within a few times max|w|, hence 4e-5 there.
     */
    static double tolerance(GgmlType type, double maxAbsW, double sumAbsX) {
        double relative = switch (type) {
            case Q4_1, Q5_1, Q4_K, Q5_K -> 4e-5;
            default -> 1e-5;
        };
        return relative * maxAbsW * sumAbsX + 1e-30;
    }

    static double referenceDot(float[] w, float[] x, int xOffset) {
        double sum = 0;
        for (int i = 0; i < w.length; i++) {
            sum += (double) w[i] * x[xOffset + i];
        }
        return sum;
    }

    static double maxAbs(float[] w) {
        double max = 0;
        for (float v : w) {
            max = Math.max(max, Math.abs(v));
        }
        return max;
    }

    static double sumAbs(float[] x, int offset, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.abs(x[offset + i]);
        }
        return sum;
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void dotMatchesReference(GgmlType type, int rows, int cols) {
        Random random = TestRandom.create("dot " + type + " [" + rows + ", " + cols + "]");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = RandomWeights.matrix(type, rows, cols, random, arena);
            WeightMatrix matrix = WeightMatrices.of("w", type, rows, cols, data);
            int xOffset = 5; // the kernels must honour xOffset, not assume 0
            float[] x = RandomWeights.vector(xOffset + cols, random);
            float[] w = new float[cols];
            for (int r = 0; r < rows; r++) {
                java.util.Arrays.fill(w, Float.NaN);
                matrix.dequantizeRow(r, w, 0);
                double expected = referenceDot(w, x, xOffset);
                float actual = matrix.dot(r, x, xOffset);
                double tolerance = tolerance(type, maxAbs(w), sumAbs(x, xOffset, cols));
                assertTrue(Double.isFinite(expected), "reference is finite");
                assertEquals(expected, actual, tolerance, type + " row " + r);
            }
        }
    }

    static Stream<GgmlType> supportedTypes() {
        return Stream.of(GgmlType.values()).filter(t -> t.supported);
    }

    /**
     * The same check after the kernels have run hot: the JIT's Vector API intrinsics (C2) replace
     * the interpreted code the other tests mostly exercise, so the compiled kernels get checked too.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("supportedTypes")
    void compiledKernelsStillMatchReference(GgmlType type) {
        Random random = TestRandom.create("hot dot " + type);
        int rows = 3;
        int cols = type.blockSize == 256 ? 512 : 96;
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix matrix = WeightMatrices.of("w", type, rows, cols, RandomWeights.matrix(type, rows, cols, random, arena));
            float[] x = RandomWeights.vector(4 * cols, random);
            float[] w = new float[cols];
            float[] out = new float[4 * rows];
            float sink = 0;
            for (int round = 0; round < 4; round++) {
                for (int i = 0; i < 10_000; i++) {
                    sink += matrix.dot(i % rows, x, 0);
                    if (i % 8 == 0) {
                        matrix.dotRows(0, rows, x, cols, 4, out, 0, rows);
                    }
                }
                java.util.Arrays.fill(out, Float.NaN);
                matrix.dotRows(0, rows, x, cols, 4, out, 0, rows);
                for (int r = 0; r < rows; r++) {
                    matrix.dequantizeRow(r, w, 0);
                    double tolerance = tolerance(type, maxAbs(w), sumAbs(x, 0, cols));
                    assertEquals(referenceDot(w, x, 0), matrix.dot(r, x, 0), tolerance, type + " round " + round + " row " + r);
                    for (int t = 0; t < 4; t++) {
                        double expected = referenceDot(w, x, t * cols);
                        assertEquals(expected, out[t * rows + r], tolerance(type, maxAbs(w), sumAbs(x, t * cols, cols)),
                                type + " round " + round + " row " + r + " input " + t);
                    }
                }
            }
            assertTrue(Float.isFinite(sink));
        }
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void dotRowsMatchesReference(GgmlType type, int rows, int cols) {
        Random random = TestRandom.create("dotRows " + type + " [" + rows + ", " + cols + "]");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = RandomWeights.matrix(type, rows, cols, random, arena);
            WeightMatrix matrix = WeightMatrices.of("w", type, rows, cols, data);
            // 1: the matvec path; 6: one group of four inputs, then two through the single-input path; 71: the dequantize-once
            // path (formats with a vector dequantizer) over a full tile of 64 and a ragged one of 7.
            for (int n : new int[] {1, 6, 71}) {
                int xStride = cols + 3;
                int outStride = rows + 2;
                int outOffset = 1;
                float[] x = RandomWeights.vector(n * xStride, random);
                float[] out = new float[n * outStride + outOffset];
                java.util.Arrays.fill(out, Float.NaN);
                int rowStart = rows / 3;
                int rowEnd = rows;
                matrix.dotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);

                float[] w = new float[cols];
                for (int t = 0; t < n; t++) {
                    for (int r = 0; r < rows; r++) {
                        float actual = out[t * outStride + outOffset + r];
                        if (r < rowStart) {
                            assertTrue(Float.isNaN(actual), "row " + r + " is outside the range and must stay untouched");
                            continue;
                        }
                        matrix.dequantizeRow(r, w, 0);
                        double expected = referenceDot(w, x, t * xStride);
                        double tolerance = tolerance(type, maxAbs(w), sumAbs(x, t * xStride, cols));
                        assertEquals(expected, actual, tolerance, type + " row " + r + " input " + t);
                    }
                    for (int pad = rows; pad < outStride; pad++) {
                        int at = t * outStride + outOffset + pad;
                        if (at < out.length) {
                            assertTrue(Float.isNaN(out[at]), "padding " + at + " must stay untouched");
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void vectorDequantizerGivesTheReferenceValues(GgmlType type, int rows, int cols) {
        Random random = TestRandom.create("dequantizeRowVector " + type + " [" + rows + ", " + cols + "]");
        try (Arena arena = Arena.ofConfined()) {
            MappedMatrix matrix = (MappedMatrix) WeightMatrices.of("w", type, rows, cols,
                    RandomWeights.matrix(type, rows, cols, random, arena));
            float[] expected = new float[cols];
            float[] actual = new float[cols];
            for (int r = 0; r < rows; r++) {
                matrix.dequantizeRow(r, expected, 0);
                java.util.Arrays.fill(actual, Float.NaN);
                matrix.dequantizeRowVector(r, actual, 0);
                org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual, type + " row " + r);
            }
        }
    }
}
