package dev.lathe.core.sample;

import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FloatExpTest {

    private static long ulpsFromCorrectlyRounded(float x) {
        float reference = (float) StrictMath.exp(x);
        return Math.abs(Float.floatToIntBits(FloatExp.exp(x)) - Float.floatToIntBits(reference));
    }

    @Test
    void withinTwoUlpsOverTheSoftmaxRange() {
        Random random = TestRandom.create("withinTwoUlpsOverTheSoftmaxRange");
        // NOTE: 2 ulps: the degree-7 series truncates at 6e-9 relative and Horner's rule in float
        // adds about an ulp; the double-precision reference is rounded once to float.
        for (int i = 0; i < 200_000; i++) {
            float x = -110f + random.nextFloat() * 200f;
            assertTrue(ulpsFromCorrectlyRounded(x) <= 2, "exp(" + x + ")");
        }
        for (float x = -1f; x <= 1f; x += 1f / 1024) {
            assertTrue(ulpsFromCorrectlyRounded(x) <= 2, "exp(" + x + ")");
        }
    }

    @Test
    void edgeValues() {
        assertEquals(1.0f, FloatExp.exp(0.0f));
        assertEquals(1.0f, FloatExp.exp(-0.0f));
        assertEquals(0.0f, FloatExp.exp(Float.NEGATIVE_INFINITY));
        assertEquals(0.0f, FloatExp.exp(-200f));
        assertEquals(Float.POSITIVE_INFINITY, FloatExp.exp(100f));
        assertTrue(Float.isNaN(FloatExp.exp(Float.NaN)));
        assertTrue(ulpsFromCorrectlyRounded(-87.0f) <= 2);
        assertTrue(ulpsFromCorrectlyRounded(Math.nextDown(-87.0f)) <= 2);
        assertTrue(ulpsFromCorrectlyRounded(88.0f) <= 2);
    }
}
