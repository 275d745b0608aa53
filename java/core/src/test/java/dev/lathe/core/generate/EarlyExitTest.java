package dev.lathe.core.generate;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EarlyExitTest {

    @Test
    void thresholdsDecideHowManyLayersRun() {
        try (LoadedModel loaded = ModelLoader.load(SharedData.require("models/stories260K/stories260K-f32.gguf"));
             CpuBackend backend = new CpuBackend(2)) {
            LlamaModel model = new LlamaModel(loaded, backend);
            int layers = model.config().layers();
            Generator full = new Generator(model, TokenizerLoader.forModel(loaded, null));
            SamplingParams greedy = SamplingParams.greedy().withMaxNewTokens(64);
            GenerationResult reference = full.generate("Once upon a time", greedy, null);
            assertEquals(layers, reference.decodeStats().layersPerStep());

            // A threshold no head reaches: every step runs every layer, so the output is the full model's.
            GenerationResult never = full.withEarlyExit(new EarlyExit(1.0f, EarlyExit.defaultLayers(layers)))
                    .generate("Once upon a time", greedy, null);
            assertArrayEquals(reference.tokens(), never.tokens());

            // A threshold every head reaches: every step exits at the first check, and the skipped
            // layers' K/V are filled, so generation goes on (its text may differ).
            int first = EarlyExit.defaultLayers(layers)[0];
            GenerationResult always = full.withEarlyExit(new EarlyExit(1e-9f, EarlyExit.defaultLayers(layers)))
                    .generate("Once upon a time", greedy, null);
            assertEquals(first, always.decodeStats().layersPerStep());
            assertEquals(reference.tokens().length, always.tokens().length);
            assertNotEquals(0, always.tokens().length);
        }
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new EarlyExit(0f, new int[] {1}));
        assertThrows(IllegalArgumentException.class, () -> new EarlyExit(1.5f, new int[] {1}));
        assertThrows(IllegalArgumentException.class, () -> new EarlyExit(0.9f, new int[] {3, 2}));
        assertThrows(IllegalArgumentException.class, () -> new EarlyExit(0.9f, new int[0]));
        assertThrows(IllegalArgumentException.class, () -> new EarlyExit(0.9f, new int[] {5}).requireFits(5));
        assertArrayEquals(new int[] {2, 3}, EarlyExit.defaultLayers(5));
        assertArrayEquals(new int[] {6, 9}, EarlyExit.defaultLayers(12));
        assertArrayEquals(new int[] {1}, EarlyExit.defaultLayers(2));
        assertTrue(EarlyExit.maxProbability(new float[] {0, 0}) == 0.5);
    }
}
