package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The tiled Q8_0 / F16 / BF16 kernels against the scalar reference (the source matrix's
 * {@code dequantizeRow}, a dot in double, with {@link DotKernelsTest}'s tolerance), Q4_0 bit for
 * bit against a scalar reference of its integer products with inputs rounded to 8 bits, and all
 * bit for bit against themselves however the rows and inputs are grouped.
 */
class RowTiledMatrixTest {
    private static final int TILE = RowTiledMatrix.TILE_ROWS;
    private static final GgmlType[] TILED = {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
            GgmlType.F16, GgmlType.BF16};

    /** Awkward row lengths: one block, three, 33 (K-quants: whole super-blocks of 256, one and three). */
    private static int[] colsFor(GgmlType type) {
        return superBlocks(type) ? new int[] {256, 256 * 3} : new int[] {32, 32 * 3, 32 * 33};
    }

    private static boolean superBlocks(GgmlType type) {
        return type == GgmlType.Q4_K || type == GgmlType.Q5_K || type == GgmlType.Q6_K;
    }

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> shapes = Stream.builder();
        for (GgmlType type : TILED) {
            // one tile; three (one short of a group); five groups and a tile; a partial last tile
            // (padded with zero rows); two rows
            for (int rows : new int[] {TILE, 3 * TILE, 21 * TILE, 5 * TILE + 5, 2}) {
                for (int cols : colsFor(type)) {
                    shapes.add(Arguments.of(type, rows, cols));
                }
            }
        }
        return shapes.build();
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void productsMatchTheReferenceAndEachOther(GgmlType type, int rows, int cols) {
        Random random = TestRandom.create("tiled " + type + " [" + rows + ", " + cols + "]");
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix source = WeightMatrices.of("w", type, rows, cols, RandomWeights.matrix(type, rows, cols, random, arena));
            WeightMatrix tiled = RowTiledMatrix.tile(source, arena);
            assertInstanceOf(RowTiledMatrix.class, tiled);
            assertEquals(source.type(), tiled.type());
            assertSame(source.data(), tiled.data());

            // 1: the single-input walk; 3: single inputs over groups of tiles; 9: decoded tile pairs,
            // two groups of four inputs and one left over. Rows from mid-tile to mid-tile where the
            // matrix allows.
            int rowStart = rows > TILE ? TILE / 2 + 1 : 0;
            int rowEnd = rows > TILE ? rows - 3 : rows;
            int xStride = cols + 3;
            int outStride = rows + 2;
            int outOffset = 1;
            int decoded = 2 * RowTiledMatrix.DECODE_MIN_INPUTS + 1;
            float[] x = RandomWeights.vector(decoded * xStride, random);
            float[] alone = new float[outOffset + rows];
            float[] w = new float[cols];
            for (int n : new int[] {1, 3, decoded}) {
                float[] out = new float[n * outStride + outOffset];
                Arrays.fill(out, Float.NaN);
                tiled.dotRows(rowStart, rowEnd, x, xStride, n, out, outOffset, outStride);
                for (int t = 0; t < n; t++) {
                    // the same input alone, over all rows: the bits must not depend on the grouping
                    float[] xt = Arrays.copyOfRange(x, t * xStride, t * xStride + cols);
                    tiled.dotRows(0, rows, xt, cols, 1, alone, outOffset, rows);
                    for (int r = 0; r < rows; r++) {
                        float actual = out[t * outStride + outOffset + r];
                        if (r < rowStart || r >= rowEnd) {
                            assertTrue(Float.isNaN(actual), "row " + r + " is outside the range and must stay untouched");
                            continue;
                        }
                        if (type == GgmlType.Q4_0 || superBlocks(type)) {
                            float expected = switch (type) {
                                case Q4_0 -> roundedInputsQ4_0Dot(source, r, x, t * xStride);
                                case Q4_K, Q5_K -> roundedInputsKDot(source, r, x, t * xStride);
                                default -> roundedInputsQ6_KDot(source, r, x, t * xStride);
                            };
                            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                                    type + " row " + r + " input " + t + " of " + n + ": " + expected + " vs " + actual);
                        } else {
                            source.dequantizeRow(r, w, 0);
                            double expected = DotKernelsTest.referenceDot(w, x, t * xStride);
                            double tolerance = DotKernelsTest.tolerance(type, DotKernelsTest.maxAbs(w),
                                    DotKernelsTest.sumAbs(x, t * xStride, cols));
                            assertEquals(expected, actual, tolerance,
                                    type + " row " + r + " input " + t + " of " + n);
                        }
                        assertEquals(Float.floatToRawIntBits(alone[outOffset + r]), Float.floatToRawIntBits(actual),
                                type + " row " + r + " input " + t + " of " + n + " vs alone");
                        if (n == 1) {
                            assertEquals(Float.floatToRawIntBits(actual), Float.floatToRawIntBits(tiled.dot(r, x, 0)),
                                    type + " row " + r + ": dot vs dotRows");
                        }
                    }
                }
            }
        }
    }

    /** The largest |x| of the 32 inputs from {@code from}: a block's rounding step is {@code amax / 127}. */
    private static float blockAmax(float[] x, int from) {
        float amax = 0;
        for (int c = 0; c < 32; c++) {
            amax = Math.max(amax, Math.abs(x[from + c]));
        }
        return amax;
    }

    /**
     * Q4_0's product as the tiles define it, one scalar step at a time, from ggml's blocks: per
     * block, x rounded to {@code rint(x * (127 / amax))} with step {@code amax / 127}, the integer
     * sum of {@code (nibble - 8) * q}, then {@code acc = fma(sum, d * step, acc)}.
     */
    static float roundedInputsQ4_0Dot(WeightMatrix q4_0, int row, float[] x, int xOffset) {
        float acc = 0;
        long block = row * q4_0.rowBytes();
        for (int b = 0; b < q4_0.cols() / 32; b++, block += 18) {
            float amax = blockAmax(x, xOffset + 32 * b);
            float inverse = amax == 0 ? 0 : 127f / amax;
            int sum = 0;
            for (int j = 0; j < 16; j++) {
                int packed = q4_0.data().get(PackedMatrix.BYTE, block + 2 + j) & 0xFF;
                sum += ((packed & 0x0F) - 8) * (int) Math.rint(x[xOffset + 32 * b + j] * inverse);
                sum += ((packed >> 4) - 8) * (int) Math.rint(x[xOffset + 32 * b + 16 + j] * inverse);
            }
            float d = Float.float16ToFloat(q4_0.data().get(PackedMatrix.HALF, block));
            acc = Math.fma((float) sum, d * (amax / 127f), acc);
        }
        return acc;
    }

    /**
     * Q4_K's and Q5_K's product as the tiles define it, from ggml's super-blocks: per 32-value
     * sub-block, x rounded as for Q4_0, {@code acc = fma(sum of q5 * q, (d * sc) * step, acc)} and
     * in a second chain {@code mins = fma(dmin * m, -(step * sum of q), mins)}; then
     * {@code acc + mins}. Q4_K: 144-byte super-blocks, qs at 16; Q5_K: 176, qh[32] at 16 (bit s
     * of qh[c] is sub-block s's fifth bit of value c), qs at 48.
     */
    static float roundedInputsKDot(WeightMatrix kQuant, int row, float[] x, int xOffset) {
        boolean q5 = kQuant.type() == GgmlType.Q5_K;
        long superBytes = q5 ? 176 : 144;
        long qs = q5 ? 48 : 16;
        float acc = 0;
        float mins = 0;
        var data = kQuant.data();
        for (int b = 0; b < kQuant.cols() / 32; b++) {
            long superBlock = row * kQuant.rowBytes() + (b / 8) * superBytes;
            int sub = b % 8;
            float d = Float.float16ToFloat(data.get(PackedMatrix.HALF, superBlock));
            float dmin = Float.float16ToFloat(data.get(PackedMatrix.HALF, superBlock + 2));
            int[] sm = scaleAndMin(data, superBlock + 4, sub);
            float amax = blockAmax(x, xOffset + 32 * b);
            float inverse = amax == 0 ? 0 : 127f / amax;
            float step = amax / 127f;
            int products = 0;
            int sum = 0;
            for (int c = 0; c < 32; c++) {
                int packed = data.get(PackedMatrix.BYTE, superBlock + qs + 32L * (sub / 2) + c) & 0xFF;
                int value = sub % 2 == 0 ? packed & 0x0F : packed >> 4;
                if (q5) {
                    value |= ((data.get(PackedMatrix.BYTE, superBlock + 16 + c) >> sub) & 1) << 4;
                }
                int q = (int) Math.rint(x[xOffset + 32 * b + c] * inverse);
                products += value * q;
                sum += q;
            }
            acc = Math.fma((float) products, d * sm[0] * step, acc);
            mins = Math.fma(dmin * sm[1], -(step * sum), mins);
        }
        return acc + mins;
    }

    /**
     * Q6_K's product as the tiles define it, from ggml's super-blocks (ql[128], qh[64], int8
     * scales[16], f16 d): per 32-value block, x rounded as for Q4_0, the integer sum of
     * {@code scales[v / 16] * (q - 32) * q_x} over its values v, then
     * {@code acc = fma(sum, d * step, acc)}.
     */
    static float roundedInputsQ6_KDot(WeightMatrix q6k, int row, float[] x, int xOffset) {
        float acc = 0;
        var data = q6k.data();
        for (int b = 0; b < q6k.cols() / 32; b++) {
            long superBlock = row * q6k.rowBytes() + (b / 8) * 210L;
            float d = Float.float16ToFloat(data.get(PackedMatrix.HALF, superBlock + 208));
            float amax = blockAmax(x, xOffset + 32 * b);
            float inverse = amax == 0 ? 0 : 127f / amax;
            int sum = 0;
            for (int c = 0; c < 32; c++) {
                int v = 32 * (b % 8) + c; // value in the super-block
                int half = v / 128;
                int k = v % 128 / 32;
                int l = v % 32;
                int ql = data.get(PackedMatrix.BYTE, superBlock + 64L * half + 32L * (k % 2) + l) & 0xFF;
                int qh = data.get(PackedMatrix.BYTE, superBlock + 128 + 32L * half + l) & 0xFF;
                int q = (k < 2 ? ql & 0x0F : ql >> 4) | ((qh >> (2 * k)) & 3) << 4;
                int scale = data.get(PackedMatrix.BYTE, superBlock + 192 + v / 16);
                sum += scale * (q - 32) * (int) Math.rint(x[xOffset + 32 * b + c] * inverse);
            }
            acc = Math.fma((float) sum, d * (amax / 127f), acc);
        }
        return acc;
    }

    /** ggml's get_scale_min_k4, written out from the spec: sub-block j's 6-bit scale and min. */
    private static int[] scaleAndMin(java.lang.foreign.MemorySegment data, long scales, int j) {
        int[] q = new int[12];
        for (int i = 0; i < 12; i++) {
            q[i] = data.get(PackedMatrix.BYTE, scales + i) & 0xFF;
        }
        if (j < 4) {
            return new int[] {q[j] & 63, q[j + 4] & 63};
        }
        return new int[] {(q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)};
    }

    @Test
    void q4_0ProductsStayCloseToTheUnroundedOnes() {
        // The rounding of the inputs costs at most half a step per value: |error| <= sum over the
        // blocks of (amax / 254) * sum |w|, plus float rounding.
        Random random = TestRandom.create("tiled Q4_0 rounding");
        int rows = 3 * TILE;
        int cols = 32 * 40;
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix source = WeightMatrices.of("w", GgmlType.Q4_0, rows, cols,
                    RandomWeights.matrix(GgmlType.Q4_0, rows, cols, random, arena));
            WeightMatrix tiled = RowTiledMatrix.tile(source, arena);
            float[] x = RandomWeights.vector(cols, random);
            float[] w = new float[cols];
            for (int r = 0; r < rows; r++) {
                source.dequantizeRow(r, w, 0);
                double bound = 0;
                for (int b = 0; b < cols / 32; b++) {
                    double amax = 0;
                    double weights = 0;
                    for (int c = 32 * b; c < 32 * b + 32; c++) {
                        amax = Math.max(amax, Math.abs(x[c]));
                        weights += Math.abs(w[c]);
                    }
                    bound += amax / 254 * weights;
                }
                double expected = DotKernelsTest.referenceDot(w, x, 0);
                double tolerance = bound * 1.01 + DotKernelsTest.tolerance(GgmlType.Q4_0, DotKernelsTest.maxAbs(w),
                        DotKernelsTest.sumAbs(x, 0, cols));
                assertEquals(expected, tiled.dot(r, x, 0), tolerance, "row " + r);
                assertTrue(bound < 0.02 * DotKernelsTest.sumAbs(x, 0, cols) * DotKernelsTest.maxAbs(w), "the bound is small");
            }
        }
    }

    @Test
    void q4_0InputsRoundLikeTheScalarDefinition() {
        // zeros (step 0), a NaN (its block's products are NaN), negative and positive ties
        float[] x = new float[96];
        x[32] = 127f; // amax 127: step 1, the values are rounded as they are
        x[33] = -0.5f;
        x[34] = 1.5f;
        x[35] = 2.5f;
        x[64] = Float.NaN;
        var in = TiledQ4_0Matrix.round(x, 0, 96, 1, 3, true, true);
        assertEquals(0f, in.blockScales[0]);
        assertEquals(0, in.sums[0]);
        assertEquals(1f, in.blockScales[1]);
        assertEquals(127 + 0 + 2 + 2, in.sums[1]);
        assertEquals(127f, in.values[32]);
        assertEquals(0, (int) in.values[33], "-0.5 rounds to even");
        assertEquals(2, (int) in.values[34], "1.5 rounds to even");
        assertEquals(2, (int) in.values[35], "2.5 rounds to even");
        assertEquals(127 | (2 << 16), in.pairs[16] & 0xFFFF | (in.pairs[17] << 16), "columns 32 and 34 as 16-bit values");
        assertEquals(127, in.pairs[16], "columns 32 and 33 in one int, the first in the low half");
        assertTrue(Float.isNaN(in.blockScales[2]), "a NaN input makes its block's step NaN");
    }

    @Test
    void compiledKernelsGiveTheSameBits() {
        Random random = TestRandom.create("tiled hot");
        int rows = 8 * TILE;
        try (Arena arena = Arena.ofConfined()) {
            for (GgmlType type : TILED) {
                int cols = superBlocks(type) ? 256 : 32 * 5;
                WeightMatrix tiled = RowTiledMatrix.tile(
                        WeightMatrices.of("w", type, rows, cols, RandomWeights.matrix(type, rows, cols, random, arena)), arena);
                int n = RowTiledMatrix.DECODE_MIN_INPUTS + 1; // both paths: single-input walks and decoded tiles
                float[] x = RandomWeights.vector(n * cols, random);
                float[] first = new float[n * rows];
                tiled.dotRows(0, rows, x, cols, n, first, 0, rows); // interpreted, mostly
                float[] firstAlone = new float[rows];
                tiled.dotRows(0, rows, x, cols, 1, firstAlone, 0, rows);
                float[] out = new float[n * rows];
                for (int i = 0; i < 3_000; i++) {
                    tiled.dotRows(0, rows, x, cols, 1 + i % n, out, 0, rows);
                }
                float[] alone = new float[rows];
                tiled.dotRows(0, rows, x, cols, 1, alone, 0, rows);
                assertArrayEquals(firstAlone, alone, type + ": one input, the same bits before and after the JIT");
                tiled.dotRows(0, rows, x, cols, n, out, 0, rows);
                assertArrayEquals(first, out, type + ": the same bits before and after the JIT");
            }
        }
    }

    /** Inputs prepared once and shared by threads working on different rows: the same bits as one call. */
    @Test
    void preparedInputsServeSeveralThreads() throws Exception {
        Random random = TestRandom.create("tiled prepared");
        int rows = 12 * TILE;
        try (Arena arena = Arena.ofShared()) {
            for (GgmlType type : TILED) {
                int cols = superBlocks(type) ? 512 : 32 * 7;
                RowTiledMatrix tiled = (RowTiledMatrix) RowTiledMatrix.tile(
                        WeightMatrices.of("w", type, rows, cols, RandomWeights.matrix(type, rows, cols, random, arena)), arena);
                for (int n : new int[] {1, RowTiledMatrix.DECODE_MIN_INPUTS + 2}) {
                    float[] x = RandomWeights.vector(n * cols, random);
                    float[] expected = new float[n * rows];
                    tiled.dotRows(0, rows, x, cols, n, expected, 0, rows);
                    RowTiledMatrix.Inputs prepared = tiled.prepare(x, cols, n);
                    float[] actual = new float[n * rows];
                    int split = 5 * TILE; // two threads, each with its own row range and scratch
                    Thread other = Thread.ofPlatform().start(() -> {
                        for (int i = 0; i < 50; i++) {
                            tiled.dotRows(prepared, split, rows, actual, 0, rows);
                        }
                    });
                    for (int i = 0; i < 50; i++) {
                        tiled.dotRows(prepared, 0, split, actual, 0, rows);
                    }
                    other.join();
                    assertArrayEquals(expected, actual, type + ", " + n + " inputs");
                }
            }
        }
    }

    @Test
    void whichMatricesAreTiled() {
        Random random = TestRandom.create("tiled which");
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix ragged = WeightMatrices.of("w", GgmlType.Q8_0, TILE + 1, 32,
                    RandomWeights.matrix(GgmlType.Q8_0, TILE + 1, 32, random, arena));
            assertInstanceOf(RowTiledMatrix.class, RowTiledMatrix.tile(ragged, arena), "rows of no whole number of tiles");
            WeightMatrix vector = WeightMatrices.of("w", GgmlType.F16, 1, 64, RandomWeights.matrix(GgmlType.F16, 1, 64, random, arena));
            assertSame(vector, RowTiledMatrix.tile(vector, arena), "one row: a norm's weight or a bias");
            WeightMatrix q5_0 = WeightMatrices.of("w", GgmlType.Q5_0, TILE, 256,
                    RandomWeights.matrix(GgmlType.Q5_0, TILE, 256, random, arena));
            assertSame(q5_0, RowTiledMatrix.tile(q5_0, arena), "a format with no tiled kernel");
            WeightMatrix f16Ragged = WeightMatrices.of("w", GgmlType.F16, TILE, 33,
                    RandomWeights.matrix(GgmlType.F16, TILE, 33, random, arena));
            assertSame(f16Ragged, RowTiledMatrix.tile(f16Ragged, arena), "F16 rows of no whole number of 32-column blocks");
            // F16 tiles hold the values times 2^10: a matrix with an infinity (or |w| >= 64) stays as it is
            var f16Data = RandomWeights.matrix(GgmlType.F16, TILE, 64, random, arena);
            WeightMatrix finite = WeightMatrices.of("w", GgmlType.F16, TILE, 64, f16Data);
            assertInstanceOf(RowTiledMatrix.class, RowTiledMatrix.tile(finite, arena));
            f16Data.set(PackedMatrix.HALF, 2L * 77, Float.floatToFloat16(Float.NEGATIVE_INFINITY));
            WeightMatrix withInfinity = WeightMatrices.of("w", GgmlType.F16, TILE, 64, f16Data);
            assertSame(withInfinity, RowTiledMatrix.tile(withInfinity, arena), "an F16 matrix holding an infinity");
        }
    }
}
