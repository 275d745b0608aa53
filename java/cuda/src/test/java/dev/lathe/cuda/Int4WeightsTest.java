package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Group-wise INT4 packing on the CPU: quantization error bound, nibble order, the GPTQ repacking. */
class Int4WeightsTest {
    @Test
    void quantizationErrorIsAtMostHalfAStep() {
        Random r = TestRandom.create("Int4WeightsTest.quantize");
        for (int group : new int[] {32, 64, 128}) {
            int rows = 3;
            int cols = 2 * group;
            float[] w = new float[rows * cols];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) r.nextGaussian();
            }
            Int4Weights q = Int4Weights.quantize(w, rows, cols, group);
            for (int row = 0; row < rows; row++) {
                for (int i = 0; i < cols; i++) {
                    int g = row * (cols / group) + i / group;
                    float scale = Float.float16ToFloat(q.scales()[g]);
                    // Half a step of rounding, plus the clamping slack the zero's rounding leaves.
                    assertTrue(Math.abs(q.value(row, i) - w[row * cols + i]) <= scale * 1.01f,
                            "group " + group + " [" + row + ", " + i + "]: " + w[row * cols + i] + " -> " + q.value(row, i));
                }
            }
        }
    }

    @Test
    void nibblesAreLowFirstAlongTheRow() {
        float[] w = new float[32];
        for (int i = 0; i < 32; i++) {
            w[i] = i % 16; // a group spanning 0..15 gives scale 1, zero 0, q = value
        }
        Int4Weights q = Int4Weights.quantize(w, 1, 32, 32);
        assertEquals(0, q.zeros()[0]);
        assertEquals(1f, Float.float16ToFloat(q.scales()[0]));
        assertEquals(0x76543210, q.qweight()[0]);
        assertEquals(0xFEDCBA98, q.qweight()[1]);
        assertEquals(13f, q.value(0, 29));
    }

    @Test
    void gptqTensorsRepackToTheSameWeights() {
        Random r = TestRandom.create("Int4WeightsTest.gptq");
        int k = 256;
        int n = 24;
        int group = 64;
        int[][] codes = new int[k][n];       // W[k, n] codes, GPTQ's orientation
        int[][] zeroCodes = new int[k / group][n];
        short[][] scaleBits = new short[k / group][n];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < n; j++) {
                codes[i][j] = r.nextInt(16);
            }
        }
        for (int g = 0; g < k / group; g++) {
            for (int j = 0; j < n; j++) {
                zeroCodes[g][j] = 1 + r.nextInt(15);
                scaleBits[g][j] = Float.floatToFloat16((float) (0.01 + r.nextDouble() * 0.1));
            }
        }
        int[] qweight = new int[(k / 8) * n];
        int[] qzeros = new int[(k / group) * (n / 8)];
        short[] scales = new short[(k / group) * n];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < n; j++) {
                qweight[(i / 8) * n + j] |= codes[i][j] << (4 * (i % 8));
            }
        }
        for (int g = 0; g < k / group; g++) {
            for (int j = 0; j < n; j++) {
                qzeros[g * (n / 8) + j / 8] |= (zeroCodes[g][j] - 1) << (4 * (j % 8)); // stored minus one
                scales[g * n + j] = scaleBits[g][j];
            }
        }
        Int4Weights w = Int4Weights.fromGptq(qweight, qzeros, scales, n, k, group, true);
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < n; j++) {
                float expected = (codes[i][j] - zeroCodes[i / group][j]) * Float.float16ToFloat(scaleBits[i / group][j]);
                assertEquals(expected, w.value(j, i), "W[" + i + ", " + j + "]");
            }
        }
        assertThrows(IllegalArgumentException.class,
                () -> Int4Weights.fromGptq(qweight, qzeros, scales, n, k, 48, true));
    }
}
