package dev.lathe.core.sample;

import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class SamplerTest {
    private static final int[] NO_HISTORY = new int[0];

    /** Parameter combinations every distribution test runs through. */
    private static List<SamplingParams> filterCombinations() {
        SamplingParams base = SamplingParams.defaults();
        return List.of(
                base,
                base.withTemperature(0.5f),
                base.withTemperature(2.0f),
                base.withTopK(1),
                base.withTopK(5),
                base.withTopK(5).withTemperature(0.7f),
                base.withTopP(0.9f),
                base.withTopP(0.5f).withTemperature(1.3f),
                base.withTopP(0.05f),
                base.withMinP(0.1f),
                base.withMinP(0.5f).withTemperature(0.8f),
                base.withTopK(40).withTopP(0.95f).withMinP(0.05f).withTemperature(0.8f),
                base.withTopK(10).withTopP(0.7f).withMinP(0.2f).withTemperature(1.5f));
    }

    /** Logit rows of different shapes: flat, peaked, one spike over a flat tail, with ties. */
    private static List<float[]> logitShapes(Random random, int n) {
        List<float[]> shapes = new ArrayList<>();
        for (float scale : new float[] {0.5f, 3f, 8f}) {
            float[] logits = new float[n];
            for (int i = 0; i < n; i++) {
                logits[i] = (float) (random.nextGaussian() * scale);
            }
            shapes.add(logits);
        }
        float[] spike = new float[n];
        for (int i = 0; i < n; i++) {
            spike[i] = (float) (random.nextGaussian() * 0.1);
        }
        spike[random.nextInt(n)] = 5f;
        shapes.add(spike);
        float[] ties = new float[n];
        for (int i = 0; i < n; i++) {
            ties[i] = random.nextInt(4) - 2;
        }
        shapes.add(ties);
        return shapes;
    }

    private static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void greedyPicksArgmaxLowestIdOnTies() {
        Random random = TestRandom.create("greedyPicksArgmaxLowestIdOnTies");
        for (int n : TestRandom.AWKWARD_SIZES) {
            Sampler sampler = new Sampler(SamplingParams.greedy(), n);
            for (float[] logits : logitShapes(random, n)) {
                assertEquals(argmax(logits), sampler.sample(logits.clone(), NO_HISTORY, 0), "n=" + n);
            }
            float[] tied = new float[n];
            Arrays.fill(tied, -1f);
            int first = random.nextInt(n);
            tied[first] = 3f;
            tied[first + random.nextInt(n - first)] = 3f;
            assertEquals(first, sampler.sample(tied, NO_HISTORY, 0));
        }
    }

    @Test
    void topKOfOneEqualsGreedy() {
        Random random = TestRandom.create("topKOfOneEqualsGreedy");
        for (int n : TestRandom.AWKWARD_SIZES) {
            Sampler topOne = new Sampler(SamplingParams.defaults().withTopK(1).withTemperature(1.7f), n);
            Sampler greedy = new Sampler(SamplingParams.greedy(), n);
            for (float[] logits : logitShapes(random, n)) {
                for (int draw = 0; draw < 5; draw++) {
                    assertEquals(greedy.sample(logits.clone(), NO_HISTORY, 0),
                            topOne.sample(logits.clone(), NO_HISTORY, 0), "n=" + n);
                }
            }
        }
    }

    @Test
    void sameSeedGivesSameSequenceAndOtherSeedsDiffer() {
        Random random = TestRandom.create("sameSeedGivesSameSequenceAndOtherSeedsDiffer");
        int n = 769;
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = (float) random.nextGaussian();
        }
        long seed = random.nextLong();
        SamplingParams params = SamplingParams.defaults().withTopP(0.95f).withSeed(seed);
        int[] first = draw(new Sampler(params, n), logits, 64);
        int[] second = draw(new Sampler(params, n), logits, 64);
        int[] otherSeed = draw(new Sampler(params.withSeed(seed + 1), n), logits, 64);
        assertArrayEquals(first, second);
        assertNotEquals(Arrays.toString(first), Arrays.toString(otherSeed));
    }

    @Test
    void fixedSeedGivesTheSameTokensOnEveryJvm() {
        // NOTE: pins the generator and the chain: these tokens were produced by this implementation
        // once; a change here means seeded outputs changed for users.
        int n = 17;
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = (i * 7 % 17) / 4.0f;
        }
        SamplingParams params = SamplingParams.defaults().withSeed(1234).withTopP(0.9f).withTemperature(0.8f);
        int[] tokens = draw(new Sampler(params, n), logits, 12);
        assertArrayEquals(PINNED_TOKENS, tokens, "got " + Arrays.toString(tokens));
    }

    private static final int[] PINNED_TOKENS = {14, 2, 12, 7, 14, 14, 7, 12, 7, 9, 12, 12};

    private static int[] draw(Sampler sampler, float[] logits, int count) {
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) {
            tokens[i] = sampler.sample(logits.clone(), NO_HISTORY, 0);
        }
        return tokens;
    }

    @Test
    void probabilitiesMatchTheReferenceChain() {
        Random random = TestRandom.create("probabilitiesMatchTheReferenceChain");
        for (int n : TestRandom.AWKWARD_SIZES) {
            for (SamplingParams params : filterCombinations()) {
                for (float[] logits : logitShapes(random, n)) {
                    int[] history = randomHistory(random, n, 1 + random.nextInt(100));
                    SamplingParams penalized = params.withRepetitionPenalty(1.3f).withPresencePenalty(0.4f)
                            .withFrequencyPenalty(0.2f).withPenaltyWindow(random.nextInt(80) - 1);
                    for (SamplingParams p : List.of(params, penalized)) {
                        double[] expected = ReferenceDistribution.probabilities(p, logits, history, history.length);
                        float[] actual = new Sampler(p, n).probabilities(logits.clone(), history, history.length);
                        assertSameDistribution(expected, actual, "n=" + n + " " + p);
                    }
                }
            }
        }
    }

    @Test
    void topPOnALargeVocabularyMatchesTheReference() {
        Random random = TestRandom.create("topPOnALargeVocabularyMatchesTheReference");
        int n = 151_936;
        for (float scale : new float[] {0.3f, 4f}) {
            float[] logits = new float[n];
            for (int i = 0; i < n; i++) {
                logits[i] = (float) (random.nextGaussian() * scale);
            }
            for (SamplingParams params : List.of(SamplingParams.defaults().withTopP(0.9f),
                    SamplingParams.defaults().withTopP(0.6f).withTopK(200).withMinP(0.01f))) {
                double[] expected = ReferenceDistribution.probabilities(params, logits, NO_HISTORY, 0);
                float[] actual = new Sampler(params, n).probabilities(logits.clone(), NO_HISTORY, 0);
                assertSameDistribution(expected, actual, "scale=" + scale + " " + params);
            }
        }
    }

    private static void assertSameDistribution(double[] expected, float[] actual, String context) {
        double sum = 0;
        for (int i = 0; i < expected.length; i++) {
            // NOTE: below 1e-38 a probability underflows float (the sampler drops weights that
            // would round to 0f), so only larger ones must be present in both.
            boolean expectedPresent = expected[i] > 1e-38;
            if ((expected[i] == 0 && actual[i] != 0) || (expectedPresent && actual[i] == 0)) {
                fail(context + ": token " + i + " expected probability " + expected[i] + " but was " + actual[i]);
            }
            // NOTE: float weights and float output: a few ulps of 1 relative error, far under 1e-5.
            assertEquals(expected[i], actual[i], 1e-5 * Math.max(expected[i], 1e-3), context + ": token " + i);
            sum += actual[i];
        }
        assertEquals(1.0, sum, 1e-4, context + ": probabilities sum");
    }

    @Test
    void drawsFollowTheProcessedDistribution() {
        Random random = TestRandom.create("drawsFollowTheProcessedDistribution");
        int draws = 3000;
        for (int n : TestRandom.AWKWARD_SIZES) {
            for (SamplingParams params : filterCombinations()) {
                float[] logits = logitShapes(random, n).get(random.nextInt(5));
                Sampler sampler = new Sampler(params.withSeed(random.nextLong()), n);
                float[] probabilities = sampler.probabilities(logits.clone(), NO_HISTORY, 0);
                int[] counts = new int[n];
                for (int i = 0; i < draws; i++) {
                    counts[sampler.sample(logits.clone(), NO_HISTORY, 0)]++;
                }
                assertFrequenciesMatch(probabilities, counts, draws, "n=" + n + " " + params);
            }
        }
    }

    /**
     * Never a token of probability 0, and a chi-square statistic within the bound below. Tokens
     * expected fewer than 5 times are pooled into one bin so the chi-square approximation holds.
     */
    private static void assertFrequenciesMatch(float[] probabilities, int[] counts, int draws, String context) {
        double statistic = 0;
        int bins = 0;
        double pooledExpected = 0;
        int pooledCount = 0;
        for (int i = 0; i < probabilities.length; i++) {
            if (probabilities[i] == 0) {
                assertEquals(0, counts[i], context + ": token " + i + " has probability 0 but was drawn");
                continue;
            }
            double expected = probabilities[i] * draws;
            if (expected < 5) {
                pooledExpected += expected;
                pooledCount += counts[i];
                continue;
            }
            statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
            bins++;
        }
        if (pooledExpected >= 5) {
            statistic += (pooledCount - pooledExpected) * (pooledCount - pooledExpected) / pooledExpected;
            bins++;
        }
        int degrees = Math.max(1, bins - 1);
        // NOTE: mean + 7 standard deviations of a chi-square (plus slack for the pooled bin and
        // few degrees of freedom): a false alarm is astronomically rare, while a wrong
        // temperature or filter moves the statistic by hundreds.
        double bound = degrees + 7 * Math.sqrt(2.0 * degrees) + 15;
        assertTrue(statistic <= bound,
                context + ": chi-square " + statistic + " over " + degrees + " degrees of freedom exceeds " + bound);
    }

    private static int[] randomHistory(Random random, int n, int length) {
        int[] history = new int[length];
        for (int i = 0; i < length; i++) {
            // A small pool so that tokens repeat.
            history[i] = random.nextInt(Math.min(n, 7)) * (n / Math.min(n, 7));
        }
        return history;
    }

    @Test
    void penaltiesChangeExactlyThePenalizedLogits() {
        Random random = TestRandom.create("penaltiesChangeExactlyThePenalizedLogits");
        int n = 111;
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = (float) (random.nextGaussian() * 3);
        }
        logits[5] = 2.0f;
        logits[6] = -2.0f;
        logits[7] = 0.0f;
        //                0  1  2  3  4  5  6  7  8
        int[] history = {9, 9, 9, 5, 6, 7, 5, 5, 6, 42, 0, 0};
        int length = 9; // entries 9.. are stale and must be ignored
        SamplingParams params = SamplingParams.defaults().withRepetitionPenalty(2.0f)
                .withPresencePenalty(0.5f).withFrequencyPenalty(0.25f).withPenaltyWindow(6);
        float[] actual = logits.clone();
        new Sampler(params, n).applyPenalties(actual, history, length);
        // window: the last 6 of the first 9 = {5, 6, 7, 5, 5, 6}
        float[] expected = logits.clone();
        expected[5] = 2.0f / 2.0f - (0.5f + 3 * 0.25f);
        expected[6] = -2.0f * 2.0f - (0.5f + 2 * 0.25f);
        expected[7] = 0.0f * 2.0f - (0.5f + 1 * 0.25f);
        assertArrayEquals(expected, actual);

        float[] whole = logits.clone();
        new Sampler(params.withPenaltyWindow(SamplingParams.WHOLE_HISTORY), n).applyPenalties(whole, history, length);
        float[] expectedWhole = expected.clone();
        expectedWhole[9] = (logits[9] > 0 ? logits[9] / 2.0f : logits[9] * 2.0f) - (0.5f + 3 * 0.25f);
        assertArrayEquals(expectedWhole, whole);

        float[] windowZero = logits.clone();
        new Sampler(params.withPenaltyWindow(0), n).applyPenalties(windowZero, history, length);
        assertArrayEquals(logits, windowZero);

        float[] onlyPresence = logits.clone();
        new Sampler(SamplingParams.defaults().withPresencePenalty(1f), n).applyPenalties(onlyPresence, history, length);
        for (int i = 0; i < n; i++) {
            boolean seen = i == 5 || i == 6 || i == 7 || i == 9;
            assertEquals(seen ? logits[i] - 1f : logits[i], onlyPresence[i], "token " + i);
        }
    }

    @Test
    void penaltiesAreAppliedOnceAndStateDoesNotLeakBetweenCalls() {
        int n = 17;
        float[] logits = new float[n];
        Arrays.fill(logits, 1f);
        Sampler sampler = new Sampler(SamplingParams.greedy().withFrequencyPenalty(1f), n);
        int[] history = {3, 3, 3};
        float[] first = logits.clone();
        sampler.applyPenalties(first, history, 3);
        float[] second = logits.clone();
        sampler.applyPenalties(second, history, 3);
        assertArrayEquals(first, second);
        assertEquals(-2f, first[3]);
        // greedy after penalties: token 0 (in the history) drops below token 3
        assertEquals(3, sampler.sample(new float[] {1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                new int[] {0}, 1));
    }

    @Test
    void badInputsAreRejected() {
        Sampler sampler = new Sampler(SamplingParams.defaults().withRepetitionPenalty(1.2f), 17);
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(new float[16], NO_HISTORY, 0));
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(new float[17], new int[] {17}, 1));
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(new float[17], new int[] {-1}, 1));
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(new float[17], new int[] {1}, 2));
        float[] nan = new float[17];
        nan[3] = Float.NaN;
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(nan, NO_HISTORY, 0));
        float[] masked = new float[17];
        Arrays.fill(masked, Float.NEGATIVE_INFINITY);
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(masked, NO_HISTORY, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(SamplingParams.defaults(), 0));
        // a bad history must not leave counts behind: the next call sees clean state
        float[] logits = new float[17];
        logits[2] = 1f;
        Sampler penalized = new Sampler(SamplingParams.greedy().withFrequencyPenalty(5f), 17);
        assertThrows(IllegalArgumentException.class, () -> penalized.sample(logits.clone(), new int[] {2, 99}, 2));
        assertEquals(2, penalized.sample(logits.clone(), NO_HISTORY, 0));
    }

    @Test
    void maskedTokensAreNeverDrawn() {
        Random random = TestRandom.create("maskedTokensAreNeverDrawn");
        int n = 111;
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = i % 3 == 0 ? Float.NEGATIVE_INFINITY : (float) random.nextGaussian();
        }
        Sampler sampler = new Sampler(SamplingParams.defaults().withSeed(random.nextLong()), n);
        for (int i = 0; i < 2000; i++) {
            assertNotEquals(0, sampler.sample(logits.clone(), NO_HISTORY, 0) % 3);
        }
    }

    @Test
    void largeVocabularySamplingRunsAndReportsTime() {
        Random random = TestRandom.create("largeVocabularySamplingRunsAndReportsTime");
        int n = 151_936;
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = (float) (random.nextGaussian() * 2.5);
        }
        for (SamplingParams params : List.of(SamplingParams.defaults().withTopK(40).withTopP(0.95f),
                SamplingParams.defaults().withTopP(0.9f), SamplingParams.defaults().withMinP(0.05f))) {
            Sampler sampler = new Sampler(params.withSeed(random.nextLong()), n);
            float[] scratch = new float[n];
            for (int i = 0; i < 30; i++) { // warm-up
                System.arraycopy(logits, 0, scratch, 0, n);
                sampler.sample(scratch, NO_HISTORY, 0);
            }
            int rounds = 100;
            long start = System.nanoTime();
            for (int i = 0; i < rounds; i++) {
                System.arraycopy(logits, 0, scratch, 0, n);
                sampler.sample(scratch, NO_HISTORY, 0);
            }
            double micros = (System.nanoTime() - start) / 1e3 / rounds;
            System.out.printf("[timing] vocab %d, %s: %.0f us per token%n", n, params, micros);
        }
    }
}
