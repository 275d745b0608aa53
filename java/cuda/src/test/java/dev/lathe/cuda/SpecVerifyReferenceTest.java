package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CPU reference of speculative verification: the rejection rule is lossless (the first token
 * it emits is distributed as the target's filtered p, whatever the draft), greedy keeps exactly
 * the drafts that match the argmax, the filters keep what they promise, and runs repeat.
 */
class SpecVerifyReferenceTest {
    private static final float[] LOGITS = {1.0f, 2.5f, 0.3f, 2.5f, -1f, 0.9f};

    private static int sample(float[] q, Random r) {
        double u = r.nextDouble();
        double acc = 0;
        for (int i = 0; i < q.length; i++) {
            acc += q[i];
            if (u < acc) {
                return i;
            }
        }
        return q.length - 1;
    }

    @Test
    void firstEmittedTokenFollowsTheTargetWhateverTheDraft() {
        Random r = TestRandom.create("SpecVerifyReferenceTest.lossless");
        float temperature = 0.8f;
        float[] p = SpecVerifyReference.distribution(LOGITS, temperature, 0, 1f);
        float[][] drafts = {
            {0.05f, 0.05f, 0.6f, 0.1f, 0.1f, 0.1f},          // far from p
            SpecVerifyReference.distribution(LOGITS, 1.5f, 0, 1f), // close to p
            {0, 0, 0, 0, 1, 0},                                // one token p rarely picks
        };
        int trials = 40000;
        for (float[] q : drafts) {
            int[] counts = new int[LOGITS.length];
            long seed = r.nextLong();
            for (int t = 0; t < trials; t++) {
                int x = sample(q, r);
                SpecVerifyReference.Result res = SpecVerifyReference.verify(new float[][] {LOGITS, LOGITS},
                        new float[][] {q}, new int[] {x}, seed, t, temperature, 0, 1f);
                counts[res.accepted() == 1 ? x : res.nextToken()]++;
            }
            for (int i = 0; i < p.length; i++) {
                double observed = counts[i] / (double) trials;
                // 5 standard deviations of a binomial proportion.
                double sigma = Math.sqrt(p[i] * (1 - p[i]) / trials);
                assertTrue(Math.abs(observed - p[i]) < 5 * sigma + 1e-4,
                        "token " + i + ": observed " + observed + ", target " + p[i]);
            }
        }
    }

    @Test
    void greedyKeepsDraftsThatMatchTheArgmax() {
        float[][] logits = {LOGITS, {0, 0, 5, 0, 0, 0}, {0, 0, 0, 0, 0, 7}};
        // Argmax of LOGITS is 1 (lowest index of the tie 2.5 / 2.5).
        assertEquals(new SpecVerifyReference.Result(2, 5),
                SpecVerifyReference.verify(logits, null, new int[] {1, 2}, 1, 0, 0f, 0, 1f));
        assertEquals(new SpecVerifyReference.Result(1, 2),
                SpecVerifyReference.verify(logits, null, new int[] {1, 4}, 1, 0, 0f, 0, 1f));
        assertEquals(new SpecVerifyReference.Result(0, 1),
                SpecVerifyReference.verify(logits, null, new int[] {3, 2}, 1, 0, 0f, 0, 1f));
    }

    @Test
    void topKKeepsTiesAndTopPKeepsTheSmallestSetReachingTheMass() {
        float[] k2 = SpecVerifyReference.distribution(LOGITS, 1f, 2, 1f);
        assertEquals(0.5f, k2[1], 1e-6);
        assertEquals(0.5f, k2[3], 1e-6);
        assertEquals(0f, k2[0] + k2[2] + k2[4] + k2[5]);
        float[] k3 = SpecVerifyReference.distribution(LOGITS, 1f, 3, 1f);
        assertTrue(k3[0] > 0 && k3[5] == 0, "the third largest logit (1.0) is kept, 0.9 is not");

        float[] full = SpecVerifyReference.distribution(LOGITS, 1f, 0, 1f);
        float[] nucleus = SpecVerifyReference.distribution(LOGITS, 1f, 0, full[1] + full[3] + 0.01f);
        assertTrue(nucleus[0] > 0 && nucleus[5] == 0, "two tied tokens plus the next most likely");
        float sum = 0;
        for (float v : nucleus) {
            sum += v;
        }
        assertEquals(1f, sum, 1e-6);
    }

    @Test
    void runsRepeatForTheSameSeedAndOffset() {
        Random r = TestRandom.create("SpecVerifyReferenceTest.repeat");
        float[] q = SpecVerifyReference.distribution(LOGITS, 2f, 0, 1f);
        int[] first = new int[50];
        int[] second = new int[50];
        for (int t = 0; t < 50; t++) {
            int x = sample(q, r);
            first[t] = SpecVerifyReference.verify(new float[][] {LOGITS, LOGITS}, new float[][] {q}, new int[] {x}, 99, t,
                    0.7f, 4, 0.9f).nextToken() * 2 + x;
            second[t] = SpecVerifyReference.verify(new float[][] {LOGITS, LOGITS}, new float[][] {q}, new int[] {x}, 99, t,
                    0.7f, 4, 0.9f).nextToken() * 2 + x;
        }
        assertArrayEquals(first, second);
    }
}
