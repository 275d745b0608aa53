package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Lathe's own formats (INT8 per channel, INT2/3/4 group-wise, NF4): Vector API {@code dot} and
 * {@code dotRows} against the scalar reference (dequantizeRow then a double dot), RTN error
 * bounds, the NF4 table, and the spec strings.
 */
class LatheFormatsTest {
    private static final int[] ROWS = {1, 3, 17, 111};

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> shapes = Stream.builder();
        LatheFormat[] formats = {
            LatheFormat.int8Channel(), LatheFormat.intGroup(4, 32, true), LatheFormat.intGroup(4, 128, false),
            LatheFormat.intGroup(3, 64, true), LatheFormat.intGroup(2, 32, true), LatheFormat.nf4(64), LatheFormat.nf4(32),
            LatheFormat.nf4DoubleQuant(64), LatheFormat.nf4DoubleQuant(32),
        };
        for (LatheFormat f : formats) {
            int[] cols = f.kind() == LatheFormat.Kind.INT8_CHANNEL ? TestRandom.AWKWARD_SIZES
                    : new int[] {f.groupSize(), f.groupSize() * 3, f.groupSize() * 7};
            for (int c : cols) {
                for (int r : ROWS) {
                    shapes.add(Arguments.of(f, r, c));
                }
            }
        }
        return shapes.build();
    }

    private static float[] gaussian(Random random, int n, float std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian() * std;
        }
        return v;
    }

    /**
     * The kernels sum in f32 in a different order from the double reference; INT_GROUP sums
     * scale*q*x and scale*zero*x separately and subtracts, terms up to ~2 max|w|. 4e-5 of
     * max|w| * sum|x| bounds both (see DotKernelsTest for the derivation).
     */
    @ParameterizedTest
    @MethodSource("shapes")
    void dotAndDotRowsMatchTheDequantizedReference(LatheFormat format, int rows, int cols) {
        Random random = TestRandom.create("lathe " + format + " " + rows + "x" + cols);
        float[] values = gaussian(random, rows * cols, 0.05f);
        int n = 5;
        float[] x = gaussian(random, n * cols, 1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = LatheEncoder.encode(format, values, rows, cols, arena);
            WeightMatrix w = WeightMatrices.of("w", (WeightFormat) format, rows, cols, data);
            assertEquals(format, w.format());
            assertEquals(data.byteSize(), w.byteSize());
            float[] out = new float[n * rows];
            Arrays.fill(out, Float.NaN); // poisoned: every slot must be written
            w.dotRows(0, rows, x, cols, n, out, 0, rows);
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                w.dequantizeRow(r, row, 0);
                double maxW = 0;
                for (float v : row) {
                    maxW = Math.max(maxW, Math.abs(v));
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

    @Test
    void rtnErrorIsWithinHalfAStep() {
        Random random = TestRandom.create("rtnErrorIsWithinHalfAStep");
        int cols = 256;
        float[] values = gaussian(random, cols, 0.05f);
        float amax = 0;
        for (float v : values) {
            amax = Math.max(amax, Math.abs(v));
        }
        try (Arena arena = Arena.ofConfined()) {
            for (LatheFormat f : new LatheFormat[] {LatheFormat.int8Channel(), LatheFormat.intGroup(4, 32, true),
                    LatheFormat.intGroup(3, 32, true), LatheFormat.intGroup(2, 32, false), LatheFormat.nf4(64)}) {
                WeightMatrix w = WeightMatrices.of("w", (WeightFormat) f, 1, cols, LatheEncoder.encode(f, values, 1, cols, arena));
                float[] back = new float[cols];
                w.dequantizeRow(0, back, 0);
                double step = switch (f.kind()) {
                    case INT8_CHANNEL -> amax / 127.0;
                    case INT_GROUP -> 2 * amax / ((1 << f.bits()) - 1);
                    // NF4's widest gap between neighbouring codes is -1 to -0.6962: 0.3038 of absmax
                    // (the positive side's widest, 0.7230 to 1, is 0.277).
                    case NF4 -> 0.3038 * amax;
                    case SPARSE24_F16, SPARSE24_INT, INT_GROUP_ACT_ORDER -> throw new AssertionError("dense RTN only: 2:4 is Sparse24Test's, act-order ActOrderIntGroupTest's");
                };
                for (int i = 0; i < cols; i++) {
                    // half a step, plus f16 rounding of the scale (2^-11 relative) over up to 2^bits levels
                    double bound = step / 2 * 1.02 + 1e-7;
                    assertTrue(Math.abs(back[i] - values[i]) <= bound,
                            f + " value " + i + ": " + values[i] + " came back as " + back[i] + ", bound " + bound);
                }
            }
        }
    }

    @Test
    void nf4CodebookIsThePublishedTable() {
        // bitsandbytes' NF4 table (QLoRA, appendix E): 16 values, exact zero at index 7.
        float[] published = {
            -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
        };
        assertArrayEquals(published, Nf4Codebook.values());
        for (int c = 0; c < 16; c++) {
            assertEquals(c, Nf4Codebook.nearest(published[c]));
        }
    }

    @Test
    void specStringsRoundTripAndBadOnesAreRejected() {
        for (LatheFormat f : new LatheFormat[] {LatheFormat.int8Channel(), LatheFormat.intGroup(4, 128, true),
                LatheFormat.intGroup(2, 64, false), LatheFormat.nf4(64)}) {
            assertEquals(f, LatheFormat.parse(f.spec(), "test"));
        }
        assertThrows(ModelFormatException.class, () -> LatheFormat.parse("int5:g32:zp", "test"));
        assertThrows(ModelFormatException.class, () -> LatheFormat.parse("int4:g48:zp", "test"));
        assertThrows(ModelFormatException.class, () -> LatheFormat.parse("fp4", "test"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LatheFormat.intGroup(5, 32, true));
        assertTrue(e.getMessage().contains("2, 3 or 4 bits"), e.getMessage());
        assertEquals(4.75, LatheFormat.intGroup(4, 32, true).bitsPerWeight(4096), 1e-9);
        assertEquals(4.5, LatheFormat.nf4(64).bitsPerWeight(4096), 1e-9);
    }

    @Test
    void typeOfALatheMatrixSaysToUseFormat() {
        try (Arena arena = Arena.ofConfined()) {
            LatheFormat f = LatheFormat.nf4(64);
            WeightMatrix w = WeightMatrices.of("blk.0.ffn_up.weight", (WeightFormat) f, 1, 64, LatheEncoder.encode(f, new float[64], 1, 64, arena));
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, w::type);
            assertTrue(e.getMessage().contains("format()"), e.getMessage());
        }
    }
}
