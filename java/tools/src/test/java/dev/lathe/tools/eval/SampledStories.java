package dev.lathe.tools.eval;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tokenizer.Tokenizers;

import java.nio.file.Path;

/**
 * Test text in the model's own distribution, made at test time (no model output is committed):
 * stories sampled from the model from BOS alone at temperature 1 with no truncation (top-k 0,
 * top-p 1, min-p 0), seeds {@code seed, seed+1, ...}, joined by newlines.
 */
public final class SampledStories {
    private SampledStories() {
    }

    public static String sample(Path modelPath, int stories, int tokensEach, long seed) {
        StringBuilder text = new StringBuilder();
        try (LoadedModel m = ModelLoader.load(modelPath); CpuBackend backend = new CpuBackend(1)) {
            Generator g = new Generator(new LlamaModel(m, backend), Tokenizers.create(m.vocabulary()));
            SamplingParams p = SamplingParams.defaults().withTemperature(1f).withTopK(0).withTopP(1f).withMinP(0f)
                    .withMaxNewTokens(tokensEach);
            for (int i = 0; i < stories; i++) {
                text.append(g.generate("", p.withSeed(seed + i), t -> { }).text()).append('\n');
            }
        }
        return text.toString();
    }
}
