package dev.lathe.core.spec;

import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The verifier's bookkeeping at temperature 0, where every decision is deterministic. */
class SpeculativeVerifierTest {
    private static final float[] LOGITS = {0f, 2.0f, 1.8f, 0.5f}; // token 1 leads token 2 by 0.2

    @Test
    void greedyKeepsDraftsWhileTheyAreTheArgmaxThenReplacesWithIt() {
        Sampler sampler = new Sampler(SamplingParams.greedy(), 4);
        int[] history = {0, 3, 1, 1, 2};
        SpeculativeVerifier.Verdict verdict = new SpeculativeVerifier().verify(sampler, row -> LOGITS.clone(), history, 2,
                new Draft(new int[] {1, 1, 2}, null));
        assertEquals(new SpeculativeVerifier.Verdict(2, 1), verdict);
        SpeculativeVerifier.Verdict all = new SpeculativeVerifier().verify(sampler, row -> LOGITS.clone(), new int[] {0, 1, 1}, 1,
                new Draft(new int[] {1, 1}, null));
        assertEquals(new SpeculativeVerifier.Verdict(2, 1), all); // the bonus token from the last row
    }

    @Test
    void penaltiesAtAVerifyPositionCountTheDraftsBeforeIt() {
        // A frequency penalty of 0.3 per occurrence: after one draft of token 1, token 1 scores
        // 1.7 < 1.8, so the target's choice at position 1 is token 2, and the second draft (token 1)
        // is rejected for it. A verifier that left the drafts out of the history would keep it.
        Sampler sampler = new Sampler(SamplingParams.greedy().withFrequencyPenalty(0.3f), 4);
        int[] history = {0, 3, 1, 1};
        SpeculativeVerifier.Verdict verdict = new SpeculativeVerifier().verify(sampler, row -> LOGITS.clone(), history, 2,
                new Draft(new int[] {1, 1}, null));
        assertEquals(new SpeculativeVerifier.Verdict(1, 2), verdict);
    }
}
