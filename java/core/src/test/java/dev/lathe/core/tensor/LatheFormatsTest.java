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
            LatheFormat.intGroup(3, 64, true), LatheFormat.intGroup(3, 32, false), LatheFormat.intGroup(3, 128, true),
            LatheFormat.intGroup(2, 32, true), LatheFormat.intGroup(2, 128, false), LatheFormat.nf4(64), LatheFormat.nf4(32),
            LatheFormat.nf4DoubleQuant(64), LatheFormat.nf4DoubleQuant(32),
        };
        for (LatheFormat f : formats) {
            int unit = f.bitPlanes() ? Math.max(f.groupSize(), 64) : f.groupSize(); // INT2/3: whole 64-level chunks
            int[] cols = f.kind() == LatheFormat.Kind.INT8_CHANNEL ? TestRandom.AWKWARD_SIZES
                    : new int[] {unit, unit * 3, unit * 7};
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

    /**
     * INT2/INT3's bit planes, byte for byte on a hand-built row (the layout in LowBitGroupMatrix's
     * comment), and levels of every value 0..2^bits-1 round-trip through pack and unpack.
     */
    @Test
    void lowBitPlanesHaveTheDocumentedLayout() {
        LatheFormat int3 = LatheFormat.intGroup(3, 32, true);
        byte[] levels = new byte[64];
        for (int i = 0; i < 64; i++) {
            levels[i] = (byte) ((i * 5 + i / 16) % 8);
        }
        LatheEncoder.Grid[] grids = {new LatheEncoder.Grid(0.5f, 3, 7), new LatheEncoder.Grid(-0.25f, 7, 7)};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(int3.rowBytes(64));
            assertEquals(16 + 8 + 2 * 3, data.byteSize(), "one chunk: 2-bit plane, third-bit word, two group headers");
            LatheEncoder.packIntGroupRow(int3, levels, grids, 64, data, 0);
            for (int i = 0; i < 16; i++) {
                int expected = (levels[i] & 3) | (levels[16 + i] & 3) << 2 | (levels[32 + i] & 3) << 4 | (levels[48 + i] & 3) << 6;
                assertEquals((byte) expected, data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i), "plane byte " + i);
            }
            for (int k = 0; k < 64; k++) {
                int bit = (data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 16 + k / 8) >>> (k % 8)) & 1;
                assertEquals((levels[k] >>> 2) & 1, bit, "third bit of level " + k);
            }
            assertEquals(Float.floatToFloat16(-0.25f), data.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 24 + 3));
            assertEquals(7, data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 24 + 3 + 2));

            WeightMatrix w = WeightMatrices.of("w", (WeightFormat) int3, 1, 64, data);
            byte[] back = new byte[64];
            LatheEncoder.Grid[] backGrids = new LatheEncoder.Grid[2];
            LatheEncoder.unpackIntGroupRow(w, 0, back, backGrids);
            assertArrayEquals(levels, back);
            assertEquals(grids[1], backGrids[1]);
            float[] row = new float[64];
            w.dequantizeRow(0, row, 0);
            assertEquals(0.5f * (levels[5] - 3), row[5]);
            assertEquals(-0.25f * (levels[40] - 7), row[40]);
        }
    }

    @Test
    void lowBitFormatsAreDenseAndNeedWholeChunks() {
        assertEquals(2.75, LatheFormat.intGroup(2, 32, true).bitsPerWeight(4096), 1e-9);
        assertEquals(3.75, LatheFormat.intGroup(3, 32, true).bitsPerWeight(4096), 1e-9);
        assertEquals(3.1875, LatheFormat.intGroup(3, 128, true).bitsPerWeight(4096), 1e-9);
        LatheFormat int2 = LatheFormat.intGroup(2, 32, true);
        assertTrue(!int2.fitsRow(96), "96 values are three groups of 32 but not whole 64-level chunks");
        try (Arena arena = Arena.ofConfined()) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("blk.0.ffn_down.weight", (WeightFormat) int2, 2, 96, arena.allocate(2 * 3 * (3 + 16))));
            assertTrue(e.getMessage().contains("64-level chunks") && e.getMessage().contains("blk.0.ffn_down.weight"), e.getMessage());
            // a file from before the dense packing (levels in nibbles) says so
            ModelFormatException old = assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("blk.0.ffn_up.weight", (WeightFormat) int2, 2, 64, arena.allocate(2 * 2 * (3 + 16))));
            assertTrue(old.getMessage().contains("re-quantize"), old.getMessage());
        }
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
