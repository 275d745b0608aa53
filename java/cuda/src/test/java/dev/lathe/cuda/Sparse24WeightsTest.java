package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** 2:4 compression on the CPU: two largest magnitudes kept per group of 4, metadata round trip. */
class Sparse24WeightsTest {
    @Test
    void keepsTheTwoLargestOfEveryGroup() {
        Random r = TestRandom.create("Sparse24WeightsTest.compress");
        int rows = 3;
        int cols = 96;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        Sparse24Weights s = Sparse24Weights.compress(w, rows, cols);
        for (int row = 0; row < rows; row++) {
            for (int g = 0; g < cols / 4; g++) {
                int kept = 0;
                float smallestKept = Float.MAX_VALUE;
                float largestDropped = 0;
                for (int c = 0; c < 4; c++) {
                    int i = 4 * g + c;
                    float v = s.value(row, i);
                    float original = w[row * cols + i];
                    if (v != 0) {
                        kept++;
                        assertEquals(Float.float16ToFloat(Float.floatToFloat16(original)), v, "kept value is f16(w)");
                        smallestKept = Math.min(smallestKept, Math.abs(original));
                    } else {
                        largestDropped = Math.max(largestDropped, Math.abs(original));
                    }
                }
                assertEquals(2, kept, "row " + row + " group " + g);
                assertTrue(smallestKept >= largestDropped, "row " + row + " group " + g + " dropped a larger weight");
            }
        }
    }

    @Test
    void metadataNibblesFollowTheLayout() {
        float[] w = new float[32];
        w[1] = 5;   // group 0 keeps columns 1 and 3
        w[3] = -4;
        w[4] = 1;   // group 1 keeps columns 0 and 2 (ties broken toward the earlier column)
        w[6] = 1;
        w[7] = 1;
        Sparse24Weights s = Sparse24Weights.compress(w, 1, 32);
        assertEquals(1 | 3 << 2, s.meta()[0] & 0xF);
        assertEquals(0 | 2 << 2, (s.meta()[0] >>> 4) & 0xF);
        assertEquals(5f, s.value(0, 1));
        assertEquals(-4f, s.value(0, 3));
        assertEquals(0f, s.value(0, 7));
    }
}
