package dev.lathe.core.spec;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tokenizer.Tokenizer;

import java.nio.file.Path;

/** Builds the drafter a {@link SpeculationSpec} names, for a target model. */
public final class Drafters {
    private Drafters() {
    }

    /**
     * @param tokenizerOverride the tokenizer file given for the target (-z), used for a draft
     *                          model that carries none (a llama2.c checkpoint); may be null
     */
    public static Drafter create(SpeculationSpec spec, LlamaModel target, Tokenizer targetTokenizer, Path tokenizerOverride) {
        return switch (spec.kind()) {
            case NGRAM -> new NgramDrafter();
            case SELF -> ModelDrafter.selfSpeculative(target, spec.layers());
            case DRAFT -> {
                LoadedModel loaded = ModelLoader.load(spec.draftPath());
                try {
                    Tokenizer draftTokenizer = TokenizerLoader.forModel(loaded, tokenizerOverride);
                    // NOTE: the draft runs on the target's backend: drafting and verifying alternate, never overlap.
                    LlamaModel draft = new LlamaModel(loaded, target.backend());
                    yield ModelDrafter.separate(spec.draftPath().toString(), draft, draftTokenizer, target, targetTokenizer, loaded);
                } catch (RuntimeException e) {
                    loaded.close();
                    throw e;
                }
            }
        };
    }
}
