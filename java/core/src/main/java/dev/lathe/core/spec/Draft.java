package dev.lathe.core.spec;

/**
 * Tokens a drafter proposes to follow a sequence, and the distribution each was drawn from.
 *
 * @param tokens        {@code [k]} the proposed tokens, in order
 * @param probabilities {@code [k][vocab]} q_i, the processed draft distribution {@code tokens[i]}
 *                      was drawn from (after the same penalties, temperature, top-k, top-p and
 *                      min-p as the target's p); null for a deterministic drafter, whose q_i is
 *                      one-hot at {@code tokens[i]}
 */
public record Draft(int[] tokens, float[][] probabilities) {
    /** No proposal: the step is a plain decode step. */
    public static final Draft EMPTY = new Draft(new int[0], null);

    public Draft {
        if (probabilities != null && probabilities.length != tokens.length) {
            throw new IllegalArgumentException(tokens.length + " draft tokens but " + probabilities.length + " distributions");
        }
    }

    public int size() {
        return tokens.length;
    }

    /** q_i as [vocab] probabilities, or null when it is one-hot at {@code tokens[i]}. */
    public float[] distribution(int i) {
        return probabilities == null ? null : probabilities[i];
    }
}
