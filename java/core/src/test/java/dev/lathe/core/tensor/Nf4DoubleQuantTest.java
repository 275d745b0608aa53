package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * NF4 with double-quantized absmax values ({@code nf4:gN:dq}): the absmax error bound, that the
 * codes and the values match single-quant NF4 up to that error, the sizes and bits per weight,
 * and bad input. The kernels against the reference are in {@link LatheFormatsTest}, the GGUF
 * round trip in LatheTensorsInGgufTest.
 */
class Nf4DoubleQuantTest {

    /** Rows whose groups have very different scales (as real weights do), so the absmax codes matter. */
    private static float[] weights(Random random, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            float rowScale = (float) Math.exp(random.nextGaussian());
            for (int c = 0; c < cols; c++) {
                v[r * cols + c] = (float) random.nextGaussian() * 0.02f * rowScale;
            }
        }
        return v;
    }

    private static float[] absmaxOf(float[] values, int group) {
        float[] absmax = new float[values.length / group];
        for (int b = 0; b < absmax.length; b++) {
            for (int i = 0; i < group; i++) {
                absmax[b] = Math.max(absmax[b], Math.abs(values[b * group + i]));
            }
        }
        return absmax;
    }

    @Test
    void dequantizedAbsmaxIsWithinHalfAStepOfItsBlock() {
        Random random = TestRandom.create("dq absmax");
        int rows = 300; // 300 * 3 = 900 groups: three whole blocks of 256 and a partial one
        int cols = 192;
        LatheFormat format = LatheFormat.nf4DoubleQuant(64);
        float[] values = weights(random, rows, cols);
        float[] exact = absmaxOf(values, 64);
        double mean = 0;
        for (float a : exact) {
            mean += a;
        }
        mean /= exact.length;
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix w = WeightMatrices.of("w", format, rows, cols, LatheEncoder.encode(format, values, rows, cols, arena));
            byte[] codes = new byte[cols];
            float[] absmax = new float[3];
            double worstRelative = 0;
            for (int r = 0; r < rows; r++) {
                LatheEncoder.unpackNf4Row(w, r, codes, absmax);
                for (int g = 0; g < 3; g++) {
                    int group = r * 3 + g;
                    int blockStart = group / 256 * 256;
                    double maxDeviation = 0;
                    for (int b = blockStart; b < Math.min(blockStart + 256, exact.length); b++) {
                        maxDeviation = Math.max(maxDeviation, Math.abs(exact[b] - mean));
                    }
                    double error = Math.abs(absmax[g] - exact[group]);
                    assertTrue(error <= maxDeviation / 254 * 1.0001 + 1e-9,
                            "group " + group + ": absmax " + absmax[g] + " vs " + exact[group] + ", bound " + maxDeviation / 254);
                    worstRelative = Math.max(worstRelative, error / exact[group]);
                }
            }
            assertTrue(worstRelative > 0, "the absmax values are quantized, not stored exactly");
        }
    }

    @Test
    void valuesAreNf4CodesTimesTheDequantizedAbsmax() {
        Random random = TestRandom.create("dq values");
        int rows = 40;
        int cols = 128;
        LatheFormat format = LatheFormat.nf4DoubleQuant(32);
        float[] values = weights(random, rows, cols);
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix w = WeightMatrices.of("w", format, rows, cols, LatheEncoder.encode(format, values, rows, cols, arena));
            byte[] codes = new byte[cols];
            float[] absmax = new float[cols / 32];
            float[] row = new float[cols];
            double squaredError = 0;
            double squared = 0;
            for (int r = 0; r < rows; r++) {
                LatheEncoder.unpackNf4Row(w, r, codes, absmax);
                w.dequantizeRow(r, row, 0);
                for (int c = 0; c < cols; c++) {
                    float a = absmax[c / 32];
                    assertEquals(Nf4Codebook.value(codes[c]) * a, row[c], 0f);
                    // the code is the nearest to the value over the absmax the kernels use
                    assertEquals(Nf4Codebook.nearest(values[r * cols + c] / a), codes[c], "row " + r + " col " + c);
                    squaredError += Math.pow(row[c] - values[r * cols + c], 2);
                    squared += Math.pow(values[r * cols + c], 2);
                }
            }
            // NF4 on Gaussian groups of 32 has ~8% relative RMS error; double quant must not add much
            assertTrue(Math.sqrt(squaredError / squared) < 0.12, "relative RMS error " + Math.sqrt(squaredError / squared));
        }
    }

    @Test
    void sizesAndBitsPerWeight() {
        LatheFormat dq = LatheFormat.nf4DoubleQuant(64);
        assertEquals(33, dq.rowBytes(64));
        assertEquals(4.125, dq.bitsPerWeight(4096), 1e-9); // the rows alone
        // a 4096 x 4096 matrix: 262,144 groups, 1,024 scales + the offset
        assertEquals(4 + 4 * 1024, dq.absmaxTableBytes(4096, 4096));
        assertEquals(4096 + 2, dq.storedRows(4096, 4096)); // 4,100 table bytes take two rows of 2,112
        assertEquals(4.5, LatheFormat.nf4(64).bitsPerWeight(4096, 4096), 1e-9);
        assertEquals(4.127, dq.bitsPerWeight(4096, 4096), 1e-4); // QLoRA's 4.127 (its padding included here)
        assertEquals(0, LatheFormat.nf4(64).absmaxTableBytes(4096, 4096));
        assertEquals(4096, LatheFormat.nf4(64).storedRows(4096, 4096));
        for (int rows = 1; rows < 2000; rows += 37) {
            for (int cols : new int[] {64, 192, 4096}) {
                assertEquals(rows, dq.logicalRows(dq.storedRows(rows, cols), cols), rows + "x" + cols);
            }
        }
    }

    @Test
    void specNameAndParse() {
        LatheFormat dq = LatheFormat.nf4DoubleQuant(64);
        assertEquals("nf4:g64:dq", dq.spec());
        assertEquals("NF4-g64-dq", dq.name());
        assertEquals(dq, LatheFormat.parse("nf4:g64:dq", "test"));
        assertEquals(LatheFormat.nf4(64), LatheFormat.parse("nf4:g64", "test"));
        assertThrows(ModelFormatException.class, () -> LatheFormat.parse("nf4:g64:dq8", "test"));
        assertThrows(ModelFormatException.class, () -> LatheFormat.parse("int4:g32:dq", "test"));
        assertThrows(ModelFormatException.class, () -> LatheFormat.parse("nf4:g48:dq", "test"));
    }

    @Test
    void badInputIsRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new LatheFormat(LatheFormat.Kind.INT_GROUP, 4, 32, true, true));
        assertTrue(e.getMessage().contains("NF4 only"), e.getMessage());
        LatheFormat dq = LatheFormat.nf4DoubleQuant(64);
        float[] values = new float[4 * 64];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment row = arena.allocate(dq.rowBytes(64));
            e = assertThrows(IllegalArgumentException.class, () -> LatheEncoder.encodeRow(dq, values, 0, 64, row, 0));
            assertTrue(e.getMessage().contains("whole matrix"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> LatheEncoder.packNf4Row(dq, new byte[64], new float[1], 64, row, 0));
            values[70] = Float.NaN;
            assertThrows(IllegalArgumentException.class, () -> LatheEncoder.encode(dq, values, 4, 64, arena));
            values[70] = 0;
            MemorySegment data = LatheEncoder.encode(dq, values, 4, 64, arena);
            // the rows without their table: the size check names the tensor
            ModelFormatException m = assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("w", dq, 4, 64, data.asSlice(0, 4 * dq.rowBytes(64))));
            assertTrue(m.getMessage().contains("w"), m.getMessage());
            // all zero: every absmax 0, every value 0
            WeightMatrix w = WeightMatrices.of("w", dq, 4, 64, data);
            float[] out = new float[64];
            w.dequantizeRow(3, out, 0);
            assertArrayEquals(new float[64], out);
        }
    }
}
