package dev.lathe.tests;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Golden outputs of llama2.c's reference run.c on Karpathy's stories260K (../shared/models/stories260K/reference).
 */
class Stories260KGoldenTest {
    private static final String DIR = "models/stories260K/";
    private static CpuBackend backend;

    @BeforeAll
    static void startBackend() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stopBackend() {
        backend.close();
    }

    static int[] referenceIds() throws IOException {
        String text = Files.readString(SharedData.require(DIR + "reference/stories260K_greedy_n256.ids.txt")).trim();
        return Arrays.stream(text.split("\\s+")).mapToInt(Integer::parseInt).toArray();
    }

    static GenerationResult greedy(String model, String prompt, int maxNew) {
        Path tokenizerPath = SharedData.require(DIR + "tok512.bin");
        try (LoadedModel loaded = ModelLoader.load(SharedData.require(DIR + model))) {
            Tokenizer tokenizer = TokenizerLoader.forModel(loaded, model.endsWith(".gguf") ? null : tokenizerPath);
            Generator generator = new Generator(new LlamaModel(loaded, backend), tokenizer);
            return generator.generate(prompt, SamplingParams.greedy().withMaxNewTokens(maxNew), null);
        }
    }

    @Test
    void llama2cCheckpointReproducesGreedyIdsAndText() throws IOException {
        GenerationResult result = greedy("stories260K.bin", "", 256);
        assertArrayEquals(referenceIds(), result.tokens());
        String expected = Files.readString(SharedData.require(DIR + "reference/stories260K_greedy_n256.txt"));
        assertEquals(expected.stripTrailing(), result.text().stripTrailing());
    }

    @Test
    void ggufF32GivesTheSameTokens() throws IOException {
        GenerationResult result = greedy("stories260K-f32.gguf", "", 256);
        assertArrayEquals(referenceIds(), result.tokens());
    }

    @Test
    void promptedGreedyMatchesReferenceText() throws IOException {
        String expected = Files.readString(SharedData.require(DIR + "reference/stories260K_greedy_prompt_OnceUponATime_n64.txt")).strip();
        String prompt = "Once upon a time";
        // run.c's -n 64 counts the prompt's tokens (BOS + 4) among its 64 steps.
        GenerationResult result = greedy("stories260K.bin", prompt, 64);
        String ours = (prompt + result.text()).strip();
        assertTrue(ours.startsWith(expected), "expected the reference text as a prefix:\n" + expected + "\n---\n" + ours);
    }
}
