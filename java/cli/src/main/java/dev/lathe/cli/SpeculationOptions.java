package dev.lathe.cli;

import dev.lathe.core.spec.Drafters;
import dev.lathe.core.spec.Speculation;
import dev.lathe.core.spec.SpeculationSpec;
import picocli.CommandLine.Option;

/** {@code --speculate} and {@code --draft-tokens}, shared by generate, batch and bench. */
final class SpeculationOptions {
    @Option(names = "--speculate", paramLabel = "DRAFTER",
            description = "Speculative decoding (lossless): draft:PATH (a draft model sharing the vocabulary, e.g. a quantized copy),"
                    + " ngram (prompt lookup), or self:LAYERS (the model's first LAYERS layers + its output head).")
    String speculate;

    @Option(names = "--draft-tokens", paramLabel = "K",
            description = "With --speculate: the most tokens drafted per step; the draft length adapts per sequence below it"
                    + " (default ${DEFAULT-VALUE}).")
    Integer draftTokens;

    boolean enabled() {
        if (speculate == null && draftTokens != null) {
            throw new IllegalArgumentException("--draft-tokens needs --speculate");
        }
        return speculate != null;
    }

    /** The speculation settings for {@code session}'s model, or null without --speculate; the caller closes its drafter. */
    Speculation create(ModelSession session, ModelOptions modelOptions) {
        if (!enabled()) {
            return null;
        }
        int k = draftTokens == null ? Speculation.DEFAULT_DRAFT_TOKENS : draftTokens;
        if (k < 1) {
            throw new IllegalArgumentException("--draft-tokens " + k + ": expected at least 1");
        }
        SpeculationSpec spec = SpeculationSpec.parse(speculate);
        return new Speculation(Drafters.create(spec, session.model, session.tokenizer, modelOptions.tokenizer), k);
    }

    /** One line of statistics. */
    static String describe(Speculation speculation, long drafted, long accepted, long steps) {
        return String.format("speculation: %s, K=%d | %d drafted, %d accepted (acceptance %.1f%%) | %.2f accepted per step over %d steps",
                speculation.drafter().describe(), speculation.maxDraftTokens(), drafted, accepted,
                drafted == 0 ? 0.0 : 100.0 * accepted / drafted, steps == 0 ? 0.0 : (double) accepted / steps, steps);
    }
}
