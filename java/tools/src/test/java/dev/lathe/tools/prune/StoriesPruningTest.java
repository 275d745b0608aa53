package dev.lathe.tools.prune;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizers;
import dev.lathe.tools.eval.ModelComparison;
import dev.lathe.tools.eval.Perplexity;
import dev.lathe.tools.eval.SampledStories;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a real model (stories260K from ../shared): at 2:4, the calibrated methods keep the model
 * closer to the original than magnitude pruning, measured as perplexity on text sampled from the
 * model itself (calibration and evaluation text from different seeds).
 */
class StoriesPruningTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    private static double perplexity(Path model, String text) {
        try (LoadedModel m = ModelLoader.load(model); CpuBackend backend = new CpuBackend(2)) {
            int[] tokens = ModelComparison.encodeWithBos(Tokenizers.create(m.vocabulary()), text);
            return Perplexity.evaluate(new LlamaModel(m, backend), tokens, 256, 128).perplexity();
        }
    }

    @Test
    void calibratedMethodsBeatMagnitudeAt24(@TempDir Path dir) throws IOException {
        Path stories = SharedData.require("models/stories260K/stories260K-f32.gguf");
        Path calib = dir.resolve("calib.txt");
        Files.writeString(calib, SampledStories.sample(stories, 20, 256, 1));
        String eval = SampledStories.sample(stories, 8, 256, 1001);
        double[] ppl = new double[PruneMethod.values().length];
        for (PruneMethod method : PruneMethod.values()) {
            Path out = dir.resolve(method + ".gguf");
            ModelPruner.prune(stories, out, new PruneOptions(method, SparsityTarget.pattern(2, 4), 0, 0, 0, calib, 32, 128,
                    PruneOptions.Store.SPARSE24, 0), false, QUIET);
            ppl[method.ordinal()] = perplexity(out, eval);
        }
        double dense = perplexity(stories, eval);
        String summary = String.format("perplexity dense %.3f, magnitude %.3f, wanda %.3f, sparsegpt %.3f", dense,
                ppl[PruneMethod.MAGNITUDE.ordinal()], ppl[PruneMethod.WANDA.ordinal()], ppl[PruneMethod.SPARSEGPT.ordinal()]);
        System.out.println(summary);
        assertTrue(ppl[PruneMethod.WANDA.ordinal()] < ppl[PruneMethod.MAGNITUDE.ordinal()], summary);
        assertTrue(ppl[PruneMethod.SPARSEGPT.ordinal()] < ppl[PruneMethod.MAGNITUDE.ordinal()], summary);
        assertTrue(dense < ppl[PruneMethod.SPARSEGPT.ordinal()], summary);
    }
}
