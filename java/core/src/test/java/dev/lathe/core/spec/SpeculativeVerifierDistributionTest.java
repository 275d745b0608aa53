package dev.lathe.core.spec;

import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The verifier's output distribution: for a fixed small-vocabulary target p and a different draft
 * q, the tokens emitted over many seeded verify steps must be distributed as p (a chi-square
 * goodness-of-fit test at significance 0.001), and rules that are not the lossless one must fail
 * the same test, so the test can tell a wrong rule from the right one.
 */
class SpeculativeVerifierDistributionTest {
    private static final int VOCAB = 6;
    // Chi-square critical value for 5 degrees of freedom (6 tokens) at significance 0.001.
    private static final double CRITICAL_5_DOF_0_001 = 20.515;
    private static final int SAMPLES = 60_000;

    private static final float[] TARGET_LOGITS = logs(0.30, 0.25, 0.20, 0.15, 0.07, 0.03);
    private static final float[] DRAFT_LOGITS = logs(0.05, 0.40, 0.10, 0.30, 0.10, 0.05);

    private static float[] logs(double... probabilities) {
        float[] logits = new float[probabilities.length];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.log(probabilities[i]);
        }
        return logits;
    }

    @Test
    void emittedTokensFollowTheTargetAtTemperatureOne() {
        double chi2 = emittedChiSquare(SamplingParams.defaults(), SpeculativeVerifier.LOSSLESS, 3, 11);
        assertTrue(chi2 < CRITICAL_5_DOF_0_001, "chi-square " + chi2 + " >= " + CRITICAL_5_DOF_0_001);
    }

    @Test
    void emittedTokensFollowTheProcessedTargetUnderTopKAndTemperature() {
        // Top-k 4 at temperature 0.7: p and q both lose tokens 4 and 5 and sharpen; the emitted
        // histogram must follow the processed p, not the raw one.
        SamplingParams params = SamplingParams.defaults().withTemperature(0.7f).withTopK(4);
        double chi2 = emittedChiSquare(params, SpeculativeVerifier.LOSSLESS, 2, 12);
        assertTrue(chi2 < CRITICAL_5_DOF_0_001, "chi-square " + chi2 + " >= " + CRITICAL_5_DOF_0_001);
    }

    @Test
    void aDeterministicDraftAlsoLeavesTheTargetDistribution() {
        // An n-gram drafter's q is one-hot at its token: the residual is p without that token.
        double chi2 = emittedChiSquare(SamplingParams.defaults(), SpeculativeVerifier.LOSSLESS, 3, 13, true);
        assertTrue(chi2 < CRITICAL_5_DOF_0_001, "chi-square " + chi2 + " >= " + CRITICAL_5_DOF_0_001);
        double wrong = emittedChiSquare(SamplingParams.defaults(), (p, q) -> 1.0, 3, 13, true);
        assertTrue(wrong > CRITICAL_5_DOF_0_001, "always keeping a fixed draft passed: chi-square " + wrong);
    }

    @Test
    void wrongAcceptanceRulesFailTheTest() {
        SpeculativeVerifier.AcceptanceRule alwaysKeep = (p, q) -> 1.0;
        SpeculativeVerifier.AcceptanceRule inverted = (p, q) -> p <= 0 ? 1.0 : Math.min(1.0, (double) q / p);
        SpeculativeVerifier.AcceptanceRule targetOnly = (p, q) -> p; // ignores q
        for (SpeculativeVerifier.AcceptanceRule wrong : new SpeculativeVerifier.AcceptanceRule[] {alwaysKeep, inverted, targetOnly}) {
            double chi2 = emittedChiSquare(SamplingParams.defaults(), wrong, 3, 11);
            assertTrue(chi2 > CRITICAL_5_DOF_0_001, "a wrong rule passed: chi-square " + chi2);
        }
    }

    /**
     * Decodes SAMPLES tokens with constant target and draft distributions (so every emitted
     * token should be an independent draw from the processed p) and returns the chi-square
     * statistic of their histogram against p.
     */
    private static double emittedChiSquare(SamplingParams params, SpeculativeVerifier.AcceptanceRule rule, int k, long seed) {
        return emittedChiSquare(params, rule, k, seed, false);
    }

    /** As above; with {@code deterministic} every draft token is 1 with q one-hot (null), as prompt lookup drafts. */
    private static double emittedChiSquare(SamplingParams params, SpeculativeVerifier.AcceptanceRule rule, int k, long seed,
                                           boolean deterministic) {
        Sampler target = new Sampler(params.withSeed(seed), VOCAB);
        Sampler draft = new Sampler(params.withSeed(seed * 31 + 7), VOCAB);
        float[] p = target.probabilities(TARGET_LOGITS.clone(), null, 0);
        SpeculativeVerifier verifier = new SpeculativeVerifier(rule);
        long[] counts = new long[VOCAB];
        int[] history = new int[k];
        int emitted = 0;
        while (emitted < SAMPLES) {
            int[] tokens = new int[k];
            float[][] q = new float[k][];
            for (int i = 0; i < k; i++) {
                q[i] = draft.probabilities(DRAFT_LOGITS.clone(), null, 0);
                tokens[i] = deterministic ? 1 : draft.sampleFrom(q[i]);
                history[i] = tokens[i];
            }
            SpeculativeVerifier.Verdict verdict = verifier.verify(target, row -> TARGET_LOGITS.clone(), history, 0,
                    new Draft(tokens, deterministic ? null : q));
            for (int i = 0; i < verdict.accepted() && emitted < SAMPLES; i++, emitted++) {
                counts[tokens[i]]++;
            }
            if (emitted < SAMPLES) {
                counts[verdict.nextToken()]++;
                emitted++;
            }
        }
        double chi2 = 0;
        for (int t = 0; t < VOCAB; t++) {
            double expected = p[t] * SAMPLES;
            if (expected == 0) {
                assertEquals(0, counts[t], "token " + t + " has target probability 0 but was emitted");
                continue;
            }
            chi2 += (counts[t] - expected) * (counts[t] - expected) / expected;
        }
        return chi2;
    }
}
