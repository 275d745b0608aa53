package dev.lathe.core.generate;

/**
 * What the decode loop did after the first token: how many target forward passes, how many
 * draft tokens were proposed and kept (speculative decoding), and how many layers ran (early exit).
 *
 * @param steps          target forward passes
 * @param draftedTokens  draft tokens proposed for verification
 * @param acceptedTokens draft tokens the target kept
 * @param layersRun      layers run over all steps (steps x layers without early exit)
 */
public record DecodeStats(long steps, long draftedTokens, long acceptedTokens, long layersRun) {
    public static final DecodeStats NONE = new DecodeStats(0, 0, 0, 0);

    public DecodeStats plus(DecodeStats o) {
        return new DecodeStats(steps + o.steps, draftedTokens + o.draftedTokens, acceptedTokens + o.acceptedTokens,
                layersRun + o.layersRun);
    }

    /** Kept drafts over proposed drafts; NaN when none were proposed. */
    public double acceptanceRate() {
        return draftedTokens == 0 ? Double.NaN : (double) acceptedTokens / draftedTokens;
    }

    /** Kept drafts per target step (each step also emits one token of the target's own). */
    public double acceptedPerStep() {
        return steps == 0 ? Double.NaN : (double) acceptedTokens / steps;
    }

    /** Layers run per step. */
    public double layersPerStep() {
        return steps == 0 ? Double.NaN : (double) layersRun / steps;
    }
}
