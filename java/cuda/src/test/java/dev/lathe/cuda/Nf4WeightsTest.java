package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** NF4 packing on the CPU: nearest-level codes, the block's absmax exact, the QLoRA table's shape. */
class Nf4WeightsTest {
    @Test
    void codebookIsTheQloraTable() {
        assertEquals(16, Nf4Weights.CODEBOOK.length);
        assertEquals(-1f, Nf4Weights.CODEBOOK[0]);
        assertEquals(0f, Nf4Weights.CODEBOOK[7]);
        assertEquals(1f, Nf4Weights.CODEBOOK[15]);
        for (int i = 1; i < 16; i++) {
            assertTrue(Nf4Weights.CODEBOOK[i] > Nf4Weights.CODEBOOK[i - 1]);
        }
    }

    @Test
    void everyValueGetsItsNearestLevel() {
        Random r = TestRandom.create("Nf4WeightsTest.quantize");
        int rows = 3;
        int cols = 192;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        Nf4Weights q = Nf4Weights.quantize(w, rows, cols);
        for (int row = 0; row < rows; row++) {
            for (int i = 0; i < cols; i++) {
                float absmax = q.absmax()[row * (cols / 64) + i / 64];
                float normalized = w[row * cols + i] / absmax;
                float got = q.value(row, i) / absmax;
                for (float level : Nf4Weights.CODEBOOK) {
                    assertTrue(Math.abs(got - normalized) <= Math.abs(level - normalized) + 1e-6f,
                            "[" + row + ", " + i + "] " + normalized + " -> " + got + ", but " + level + " is nearer");
                }
            }
        }
        // The largest magnitude of a block is represented exactly (level +-1).
        float[] block = new float[64];
        block[5] = -3f;
        block[9] = 2f;
        Nf4Weights one = Nf4Weights.quantize(block, 1, 64);
        assertEquals(-3f, one.value(0, 5));
        assertEquals(3f * Nf4Weights.CODEBOOK[Nf4Weights.nearest(2f / 3f)], one.value(0, 9));
    }
}
