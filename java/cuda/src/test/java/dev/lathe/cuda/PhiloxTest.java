package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Philox4x32-10 against the known-answer vectors published with Random123 (kat_vectors). */
class PhiloxTest {
    @Test
    void knownAnswerVectors() {
        assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                Philox.philox4x32_10(0, 0, 0, 0, 0, 0));
        assertArrayEquals(new int[] {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                Philox.philox4x32_10(-1, -1, -1, -1, -1, -1));
        assertArrayEquals(new int[] {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
                Philox.philox4x32_10(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0));
    }

    @Test
    void uniformsLieInTheUnitInterval() {
        assertTrue(Philox.uniform(0) == 0f);
        assertTrue(Philox.uniform(-1) < 1f);
        double sum = 0;
        for (int i = 0; i < 10000; i++) {
            float u = Philox.uniform(Philox.draw(42, i, 0)[0]);
            assertTrue(u >= 0 && u < 1, "u = " + u);
            sum += u;
        }
        assertTrue(Math.abs(sum / 10000 - 0.5) < 0.02, "mean " + sum / 10000);
    }
}
