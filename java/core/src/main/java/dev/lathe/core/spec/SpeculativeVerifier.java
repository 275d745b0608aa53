package dev.lathe.core.spec;

import dev.lathe.core.sample.Sampler;

import java.util.function.IntFunction;

/**
 * The lossless acceptance rule of speculative sampling (Leviathan et al. 2023, Chen et al. 2023):
 * draft token x, drawn from the draft's q, is kept with probability min(1, p(x) / q(x)); at the
 * first rejection the replacement is drawn from normalize(max(0, p - q)); when all k drafts are
 * kept, one more token is drawn from the target's p at position k. Every emitted token is then
 * distributed exactly as the target's sampler would draw it.
 *
 * <p>p is {@link Sampler#probabilities}: the very chain (penalties over the history including
 * the earlier drafts, top-k, temperature, top-p, min-p) plain decoding samples from, so this
 * holds for every sampling setting. At temperature 0 p and a model draft's q are one-hot at
 * their argmax: a draft is kept exactly when it is the target's argmax and the replacement is
 * the argmax, so the output is plain greedy decoding's, token for token. The bonus token is
 * {@link Sampler#sample} itself, so a step without drafts is a plain decode step.
 */
public final class SpeculativeVerifier {

    /** The probability of keeping a draft token given p(x) and q(x). */
    @FunctionalInterface
    public interface AcceptanceRule {
        double keepProbability(float p, float q);
    }

    /** min(1, p(x) / q(x)); q(x) > 0 always holds for a token drawn from q. */
    public static final AcceptanceRule LOSSLESS = (p, q) -> q <= 0 ? 1.0 : Math.min(1.0, (double) p / q);

    /** What a verify step produced: the first {@code accepted} drafts, then {@code nextToken}. */
    public record Verdict(int accepted, int nextToken) {
    }

    /** {@link #check}'s answer for a kept draft. */
    public static final int KEPT = -1;

    private final AcceptanceRule rule;

    public SpeculativeVerifier() {
        this(LOSSLESS);
    }

    /** With another acceptance rule: only for tests that check the distribution test can fail. */
    public SpeculativeVerifier(AcceptanceRule rule) {
        this.rule = rule;
    }

    /**
     * Verifies {@code draft} against the target.
     *
     * @param sampler      the sequence's sampler: its processing gives p, its generator the draws
     * @param targetLogits row {@code i} in [0, k] gives the target's logits [vocab] at verify
     *                     position i (after the sequence and the first i drafts); the rows are
     *                     asked for in order, only as far as needed, and may be modified
     * @param history      {@code history[0, length)} the sequence, followed at
     *                     {@code [length, length + k)} by the draft's tokens
     */
    public Verdict verify(Sampler sampler, IntFunction<float[]> targetLogits, int[] history, int length, Draft draft) {
        int k = draft.size();
        for (int i = 0; i < k; i++) {
            if (history[length + i] != draft.tokens()[i]) {
                throw new IllegalArgumentException("history[" + (length + i) + "] = " + history[length + i]
                        + " is not draft token " + i + " = " + draft.tokens()[i]);
            }
            float[] p = sampler.probabilities(targetLogits.apply(i), history, length + i);
            int replacement = check(p, draft.distribution(i), draft.tokens()[i], sampler);
            if (replacement != KEPT) {
                return new Verdict(i, replacement);
            }
        }
        return new Verdict(k, sampler.sample(targetLogits.apply(k), history, length + k));
    }

    /**
     * One position: {@link #KEPT}, or the replacement token drawn from normalize(max(0, p - q)).
     *
     * @param p [vocab] the target's processed distribution
     * @param q [vocab] the draft's, or null when it is one-hot at {@code x} (a deterministic drafter)
     * @param x the draft token
     */
    public int check(float[] p, float[] q, int x, Sampler sampler) {
        float qx = q == null ? 1.0f : q[x];
        if (sampler.nextUniform() < rule.keepProbability(p[x], qx)) {
            return KEPT;
        }
        float[] residual = new float[p.length];
        double mass = 0;
        for (int j = 0; j < p.length; j++) {
            float qj = q == null ? (j == x ? 1.0f : 0.0f) : q[j];
            residual[j] = Math.max(0.0f, p[j] - qj);
            mass += residual[j];
        }
        // NOTE: a rejection means p(x) < q(x), so p - q has positive mass somewhere; only rounding
        // can leave none, and then p itself is the right distribution to fall back on.
        return sampler.sampleFrom(mass > 0 ? residual : p);
    }
}
