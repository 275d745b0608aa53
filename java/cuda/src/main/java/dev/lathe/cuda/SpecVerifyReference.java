package dev.lathe.cuda;

import java.util.Arrays;

/**
 * The CPU reference of the speculative verification kernel (kernels/spec/verify.cuh), step for
 * step: the same filtered target distribution (temperature, top-k with ties kept, top-p as the
 * smallest most-likely set reaching the mass, ties kept), the same lossless rejection rule and the
 * same Philox uniforms, so the GPU must return the same accepted count and next token (barring
 * a uniform landing within rounding of a decision boundary).
 */
public final class SpecVerifyReference {
    private SpecVerifyReference() {
    }

    /** Drafts kept (0..k) and the token that follows them. */
    public record Result(int accepted, int nextToken) {
    }

    /**
     * @param targetLogits {@code [k + 1][vocab]} the target's logits at the k+1 positions
     * @param draftProbs   {@code [k][vocab]} the draft's probabilities (ignored when greedy)
     * @param draftTokens  {@code [k]}
     */
    public static Result verify(float[][] targetLogits, float[][] draftProbs, int[] draftTokens, long seed, long offset,
                                float temperature, int topK, float topP) {
        int k = draftTokens.length;
        int accepted = 0;
        for (int i = 0; i <= k; i++) {
            float[] logits = targetLogits[i];
            int[] draw = Philox.draw(seed, offset, i);
            if (!(temperature > 0)) {
                int best = argmax(logits);
                if (i < k && draftTokens[i] == best) {
                    accepted++;
                    continue;
                }
                return new Result(accepted, best);
            }
            float[] p = distribution(logits, temperature, topK, topP);
            if (i < k) {
                int x = draftTokens[i];
                float px = x >= 0 && x < p.length ? p[x] : 0;
                float qx = x >= 0 && x < p.length ? draftProbs[i][x] : 0;
                if (Philox.uniform(draw[0]) * qx < px) {
                    accepted++;
                    continue;
                }
                float[] residual = new float[p.length];
                float mass = 0;
                for (int j = 0; j < p.length; j++) {
                    residual[j] = Math.max(p[j] - draftProbs[i][j], 0f);
                    mass += residual[j];
                }
                if (mass <= 0) {
                    residual = p;
                    mass = 1;
                }
                return new Result(accepted, sample(residual, Philox.uniform(draw[1]) * mass));
            }
            return new Result(accepted, sample(p, Philox.uniform(draw[1])));
        }
        throw new AssertionError("unreachable");
    }

    /** The target's filtered, normalized distribution (temperature > 0). */
    public static float[] distribution(float[] logits, float temperature, int topK, float topP) {
        int n = logits.length;
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        float cut = Float.NEGATIVE_INFINITY;
        if (topK > 0 && topK < n) {
            float[] sorted = logits.clone();
            Arrays.sort(sorted);
            cut = sorted[n - topK]; // the k-th largest; every logit equal to it is kept
        }
        float[] p = new float[n];
        float total = 0;
        for (int i = 0; i < n; i++) {
            p[i] = logits[i] >= cut ? (float) Math.exp((logits[i] - max) / temperature) : 0f;
            total += p[i];
        }
        for (int i = 0; i < n; i++) {
            p[i] /= total;
        }
        if (topP < 1) {
            float[] sorted = p.clone();
            Arrays.sort(sorted);
            float acc = 0;
            float probCut = 0;
            for (int i = n - 1; i >= 0; i--) {
                acc += sorted[i];
                probCut = sorted[i];
                if (acc >= topP) {
                    break;
                }
            }
            float kept = 0;
            for (int i = 0; i < n; i++) {
                if (p[i] < probCut) {
                    p[i] = 0;
                }
                kept += p[i];
            }
            for (int i = 0; i < n; i++) {
                p[i] /= kept;
            }
        }
        return p;
    }

    /** The first index whose inclusive prefix sum exceeds {@code target}; the last positive weight if none does. */
    static int sample(float[] w, float target) {
        float acc = 0;
        int lastPositive = 0;
        for (int i = 0; i < w.length; i++) {
            if (w[i] > 0) {
                lastPositive = i;
            }
            acc += w[i];
            if (acc > target) {
                return i;
            }
        }
        return lastPositive;
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best] || Float.isNaN(v[best])) {
                best = i;
            }
        }
        return best;
    }
}
