package dev.lathe.core.tensor;

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
 * Act-order group-wise INT: the gathering kernels against the dequantize-then-dot reference, and
 * against the plain INT_GROUP matrix of its stored rows applied to the gathered input (the same
 * sums, equal to the last ulp); the column table's checks; the spec string.
 */
class ActOrderIntGroupTest {

    private record Built(WeightMatrix actOrder, WeightMatrix rows, int[] order) {
    }

    private static Built build(Random random, int bits, int g, boolean zp, int rows, int cols, Arena arena) {
        LatheFormat plain = LatheFormat.intGroup(bits, g, zp);
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) random.nextGaussian();
        }
        MemorySegment rowData = LatheEncoder.encode(plain, v, rows, cols, arena);
        int[] order = new int[cols];
        for (int j = 0; j < cols; j++) {
            order[j] = j;
        }
        for (int j = cols - 1; j > 0; j--) {
            int o = random.nextInt(j + 1);
            int t = order[j];
            order[j] = order[o];
            order[o] = t;
        }
        LatheFormat act = LatheFormat.intGroupActOrder(bits, g, zp);
        MemorySegment data = arena.allocate(act.matrixBytes(rows, cols), 8);
        data.copyFrom(rowData);
        LatheEncoder.packColumnOrder(act, order, rows, cols, data);
        return new Built(WeightMatrices.of("w", act, rows, cols, data), WeightMatrices.of("w", plain, rows, cols, rowData), order);
    }

    @Test
    void gatheredKernelsMatchTheReferenceAndTheStoredRows() {
        Random random = TestRandom.create("gatheredKernelsMatchTheReferenceAndTheStoredRows");
        try (Arena arena = Arena.ofConfined()) {
            for (int rows : TestRandom.AWKWARD_SIZES) {
                for (int[] shape : new int[][] {{4, 32, 64}, {3, 64, 192}, {2, 32, 128}, {4, 32, 96}}) { // INT2/3 rows: whole 64-level chunks
                    boolean zp = rows % 2 == 1;
                    Built b = build(random, shape[0], shape[1], zp, rows, shape[2], arena);
                    int cols = shape[2];
                    int n = 6;
                    float[] x = new float[n * cols];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) random.nextGaussian();
                    }
                    float[] gathered = new float[n * cols];
                    for (int t = 0; t < n; t++) {
                        for (int j = 0; j < cols; j++) {
                            gathered[t * cols + j] = x[t * cols + b.order()[j]];
                        }
                    }
                    float[] out = new float[n * rows];
                    float[] expected = new float[n * rows];
                    java.util.Arrays.fill(out, Float.NaN); // poisoned
                    b.actOrder().dotRows(0, rows, x, cols, n, out, 0, rows);
                    b.rows().dotRows(0, rows, gathered, cols, n, expected, 0, rows);
                    // The same kernel on the same values: equal but for the last ulp, which JIT tiers may change
                    // (the Vector API's lane reduction interpreted vs compiled), so 1e-6 relative.
                    for (int i = 0; i < out.length; i++) {
                        assertEquals(expected[i], out[i], 1e-6f * (1 + Math.abs(expected[i])), "dotRows: the INT_GROUP kernel on the gathered input, " + i);
                    }
                    float[] row = new float[cols];
                    for (int r = 0; r < rows; r++) {
                        b.actOrder().dequantizeRow(r, row, 0);
                        for (int t = 0; t < n; t++) {
                            double ref = 0;
                            double magnitude = 0; // sum of |terms|: what a last-ulp difference of the partial sums scales with
                            for (int k = 0; k < cols; k++) {
                                ref += row[k] * x[t * cols + k];
                                magnitude += Math.abs(row[k] * x[t * cols + k]);
                            }
                            // f32 sums over up to 192 products of O(1) values in another order: 1e-4 relative to the magnitude
                            assertEquals(ref, out[t * rows + r], 1e-4 * (1 + Math.abs(ref)) * Math.sqrt(cols), "row " + r + " input " + t);
                            float plainDot = b.rows().dot(r, gathered, t * cols);
                            assertEquals(plainDot, b.actOrder().dot(r, x, t * cols), 1e-6 * (1 + magnitude), "dot: the INT_GROUP dot on the gathered input");
                        }
                    }
                }
            }
        }
    }

    @Test
    void columnTableMustBeAPermutation() {
        try (Arena arena = Arena.ofConfined()) {
            Built b = build(new Random(3), 4, 32, true, 4, 64, arena);
            LatheFormat act = (LatheFormat) b.actOrder().format();
            MemorySegment bad = arena.allocate(act.matrixBytes(4, 64), 8);
            bad.copyFrom(b.actOrder().data());
            int[] order = b.order().clone();
            order[1] = order[0];
            LatheEncoder.packColumnOrder(act, order, 4, 64, bad);
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> WeightMatrices.of("w", act, 4, 64, bad));
            assertTrue(e.getMessage().contains("permutation"), e.getMessage());
        }
    }

    @Test
    void specAndSizesRoundTrip() {
        LatheFormat act = LatheFormat.intGroupActOrder(4, 128, false);
        assertEquals("int4:g128:sym:perm", act.spec());
        assertEquals(act, LatheFormat.parse(act.spec(), "test"));
        assertEquals(LatheFormat.intGroup(4, 128, false), act.rowFormat());
        // 4096 columns: a 16 KiB table after rows of 2,112 bytes = 8 more rows
        assertEquals(4096 + 8, act.storedRows(4096, 4096));
        assertEquals(4096, act.logicalRows(act.storedRows(4096, 4096), 4096));
    }
}
