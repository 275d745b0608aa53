package dev.lathe.core.sample;

import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Golden tokens from llama2.c: run.c's sampler functions (random_u32, random_f32, softmax,
 * sample_mult, sample_topp, sample) compiled with gcc -O2 against glibc 2.36 (whose qsort is a
 * merge sort), fed the logits of {@link #logitsAt} for each step.
 */
class Llama2cSamplerTest {

    /** Integer-derived logits, so that C and Java start from the same floats bit for bit. */
    private static float[] logitsAt(int step, int vocabularySize) {
        float[] logits = new float[vocabularySize];
        for (int i = 0; i < vocabularySize; i++) {
            logits[i] = (int) (((long) i * 7919 + (long) step * 104729) % 1000) / 250.0f - 2.0f;
        }
        return logits;
    }

    private static int[] run(int vocabularySize, float temperature, float topP, long seed, int steps) {
        Llama2cSampler sampler = new Llama2cSampler(vocabularySize, temperature, topP, seed);
        int[] tokens = new int[steps];
        for (int step = 0; step < steps; step++) {
            tokens[step] = sampler.sample(logitsAt(step, vocabularySize));
        }
        return tokens;
    }

    @Test
    void randomNumbersMatchRunC() {
        Llama2cSampler sampler = new Llama2cSampler(1, 1f, 0.9f, 133742);
        long[] expected = {3033531262L, 2674377904L, 2312864567L, 2287415643L};
        for (long value : expected) {
            assertEquals(value, Integer.toUnsignedLong(sampler.nextUnsignedInt()));
        }
        Llama2cSampler other = new Llama2cSampler(1, 1f, 0.9f, 42);
        assertEquals(1456360119L, Integer.toUnsignedLong(other.nextUnsignedInt()));
    }

    @Test
    void topPSamplingMatchesRunC() {
        // ./run -t 1.0 -p 0.9 -s 133742, the settings of the stories260K reference text
        assertArrayEquals(new int[] {
                324, 135, 341, 66, 284, 136, 341, 335, 185, 331, 190, 236, 273, 144, 451, 12, 428, 500, 253, 455,
                8, 338, 423, 135, 121, 188, 198, 295, 61, 213, 456, 147, 66, 412, 394, 489, 79, 89, 395, 403},
                run(512, 1.0f, 0.9f, 133742, 40));
        assertArrayEquals(new int[] {
                1, 0, 8, 4, 1, 11, 5, 2, 12, 9, 4, 1, 13, 6, 15, 13, 9, 5, 3, 12,
                9, 5, 1, 11, 8, 3, 13, 11, 7, 3, 11, 8, 6, 15, 12, 9, 6, 1, 11, 7},
                run(17, 1.3f, 0.5f, 42, 40));
    }

    @Test
    void tiedProbabilitiesKeepTokenOrderLikeGlibcQsort() {
        // 1500 tokens over 1000 distinct logits: every probability above the cutoff is shared by
        // two tokens, so the order among equals decides the draw.
        assertArrayEquals(new int[] {
                523, 114, 401, 694, 704, 886, 812, 508, 98, 616, 340, 942, 543, 1419, 398, 988, 90, 195, 1065, 656,
                823, 1412, 570, 913, 466, 1188, 1310, 731, 1477, 140, 357, 403, 340, 618, 100, 480, 524, 415, 904, 949},
                run(1500, 1.0f, 0.95f, 7, 40));
    }

    @Test
    void fullDistributionSamplingMatchesRunC() {
        assertArrayEquals(new int[] {
                359, 319, 278, 275, 172, 442, 363, 67, 259, 365, 190, 186, 442, 305, 424, 77, 12, 203, 452, 11,
                143, 142, 348, 282, 405, 3, 160, 331, 502, 206, 125, 405, 42, 421, 232, 173, 264, 348, 393, 317},
                run(512, 0.8f, 0f, 133742, 40));
    }

    @Test
    void greedyIsTheFirstArgmax() {
        assertArrayEquals(new int[] {321, 330, 339, 348, 357, 366, 375, 384, 393, 402}, run(512, 0f, 0.9f, 5, 10));
        assertArrayEquals(new int[] {0, 0, 0}, run(1, 1f, 0.9f, 5, 3));
    }

    @Test
    void drawsStayInsideTheNucleus() {
        Random random = TestRandom.create("drawsStayInsideTheNucleus");
        for (int n : TestRandom.AWKWARD_SIZES) {
            Llama2cSampler sampler = new Llama2cSampler(n, 1f, 0.5f, 1 + (random.nextLong() >>> 1));
            float[] logits = new float[n];
            for (int i = 0; i < n; i++) {
                logits[i] = (float) (random.nextGaussian() * 2);
            }
            // the nucleus of p = 0.5: tokens by descending logit until the probability exceeds 0.5
            double[] probabilities = ReferenceDistribution.probabilities(SamplingParams.defaults(), logits, new int[0], 0);
            Integer[] order = new Integer[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
            boolean[] inNucleus = new boolean[n];
            double cumulative = 0;
            for (int i = 0; i < n && cumulative <= 0.5; i++) {
                inNucleus[order[i]] = true;
                cumulative += probabilities[order[i]];
            }
            for (int draw = 0; draw < 500; draw++) {
                int token = sampler.sample(logits.clone());
                assertTrue(inNucleus[token], "n=" + n + ": token " + token + " is outside the nucleus");
            }
        }
    }

    @Test
    void invalidSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Llama2cSampler(512, 1f, 0.9f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Llama2cSampler(0, 1f, 0.9f, 1));
        assertThrows(IllegalArgumentException.class, () -> new Llama2cSampler(512, -1f, 0.9f, 1));
        assertThrows(IllegalArgumentException.class, () -> new Llama2cSampler(512, 1f, Float.NaN, 1));
        assertThrows(IllegalArgumentException.class, () -> new Llama2cSampler(512, 1f, 0.9f, 1).sample(new float[3]));
    }
}
