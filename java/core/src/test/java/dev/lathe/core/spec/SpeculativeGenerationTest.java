package dev.lathe.core.spec;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding at temperature 0 gives plain greedy decoding's tokens, for every drafter,
 * on a synthetic model (F32 target, its Q8_0 copy as the draft) and on stories260K (../shared).
 */
class SpeculativeGenerationTest {
    @TempDir
    static Path tmp;
    private static CpuBackend backend;
    private static LoadedModel target;
    private static LoadedModel draft;
    private static LlamaModel targetModel;
    private static LlamaModel draftModel;
    private static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(2);
        Path targetFile = tmp.resolve("small-f32.gguf");
        Path draftFile = tmp.resolve("small-q8_0.gguf");
        SyntheticModel.small(GgmlType.F32).write(targetFile);
        SyntheticModel.small(GgmlType.Q8_0).write(draftFile);
        target = ModelLoader.load(targetFile);
        draft = ModelLoader.load(draftFile);
        tokenizer = TokenizerLoader.forModel(target, null);
        targetModel = new LlamaModel(target, backend);
        draftModel = new LlamaModel(draft, backend);
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
        backend.close();
    }

    /** A prompt that repeats itself, so prompt lookup finds matches. */
    private static int[] repetitivePrompt() {
        SplittableRandom random = new SplittableRandom(5);
        int[] phrase = random.ints(12, 3, 2048).toArray();
        int[] prompt = new int[1 + 3 * phrase.length];
        prompt[0] = 1;
        for (int r = 0; r < 3; r++) {
            System.arraycopy(phrase, 0, prompt, 1 + r * phrase.length, phrase.length);
        }
        return prompt;
    }

    private static void assertSameAsPlain(Generator plain, Generator speculative, int[] prompt, int n, boolean expectAccepts) {
        SamplingParams greedy = SamplingParams.greedy().withMaxNewTokens(n);
        GenerationResult expected = plain.generate(prompt, greedy, null);
        GenerationResult actual = speculative.generate(prompt, greedy, null);
        assertArrayEquals(expected.tokens(), actual.tokens());
        assertEquals(expected.text(), actual.text());
        assertEquals(expected.finishReason(), actual.finishReason());
        assertTrue(actual.decodeStats().draftedTokens() > 0, "nothing was drafted: " + actual.decodeStats());
        if (expectAccepts) {
            assertTrue(actual.decodeStats().acceptedTokens() > 0, "nothing was accepted: " + actual.decodeStats());
        }
    }

    @Test
    void syntheticGreedyOutputIsPlainDecodingsForEveryDrafter() {
        Generator plain = new Generator(targetModel, tokenizer);
        int[] prompt = repetitivePrompt();
        assertSameAsPlain(plain, plain.withSpeculation(new Speculation(new NgramDrafter(), 4)), prompt, 40, false);
        assertSameAsPlain(plain, plain.withSpeculation(new Speculation(ModelDrafter.selfSpeculative(targetModel, 2), 3)),
                prompt, 40, false);
        Drafter quantizedCopy = ModelDrafter.separate("small-q8_0", draftModel, tokenizer, targetModel, tokenizer, null);
        // The Q8_0 copy agrees with its F32 original on most greedy tokens: acceptances must happen.
        assertSameAsPlain(plain, plain.withSpeculation(new Speculation(quantizedCopy, 5)), prompt, 40, true);
    }

    @Test
    void stories260KGreedyOutputIsPlainDecodingsForEveryDrafter() {
        Path dir = SharedData.require("models/stories260K");
        try (LoadedModel f32 = ModelLoader.load(dir.resolve("stories260K-f32.gguf"));
             LoadedModel q8 = ModelLoader.load(dir.resolve("stories260K-q8_0.gguf"))) {
            Tokenizer tok = TokenizerLoader.forModel(f32, null);
            LlamaModel model = new LlamaModel(f32, backend);
            LlamaModel small = new LlamaModel(q8, backend);
            Generator plain = new Generator(model, tok);
            int[] prompt = plain.encodePrompt("Once upon a time, there was a little girl named Lily. Lily liked to play.");
            assertSameAsPlain(plain, plain.withSpeculation(new Speculation(new NgramDrafter(), 4)), prompt, 96, true);
            assertSameAsPlain(plain, plain.withSpeculation(new Speculation(ModelDrafter.selfSpeculative(model, 3), 4)),
                    prompt, 96, true);
            Drafter q8Draft = ModelDrafter.separate("stories260K-q8_0", small, TokenizerLoader.forModel(q8, null), model, tok, null);
            assertSameAsPlain(plain, plain.withSpeculation(new Speculation(q8Draft, 4)), prompt, 96, true);
        }
    }

    @Test
    void stopStringsInsideAcceptedDraftsEndTheOutputWhereThePlainOneEnds() {
        Path dir = SharedData.require("models/stories260K");
        try (LoadedModel f32 = ModelLoader.load(dir.resolve("stories260K-f32.gguf"));
             LoadedModel q8 = ModelLoader.load(dir.resolve("stories260K-q8_0.gguf"))) {
            Tokenizer tok = TokenizerLoader.forModel(f32, null);
            LlamaModel model = new LlamaModel(f32, backend);
            Generator plain = new Generator(model, tok);
            Generator speculative = plain.withSpeculation(new Speculation(ModelDrafter.separate("stories260K-q8_0",
                    new LlamaModel(q8, backend), TokenizerLoader.forModel(q8, null), model, tok, null), 6));
            for (String stop : new String[] {"Lily", ".", "park"}) {
                SamplingParams params = SamplingParams.greedy().withMaxNewTokens(200).withStopStrings(java.util.List.of(stop));
                GenerationResult expected = plain.generate("Once upon a time", params, null);
                GenerationResult actual = speculative.generate("Once upon a time", params, null);
                assertArrayEquals(expected.tokens(), actual.tokens(), stop);
                assertEquals(expected.text(), actual.text(), stop);
                assertEquals(expected.finishReason(), actual.finishReason(), stop);
            }
            // A long budget: greedy stories260K ends its story with EOS inside a run of accepted drafts.
            SamplingParams long300 = SamplingParams.greedy().withMaxNewTokens(300);
            assertArrayEquals(plain.generate("Tim", long300, null).tokens(), speculative.generate("Tim", long300, null).tokens());
        }
    }

    @Test
    void penalizedGreedyOutputIsPlainDecodings() {
        // Greedy with a strong frequency penalty over the whole history on stories260K. (That p at
        // verify position i counts drafts 0..i-1 as history is pinned down by SpeculativeVerifierTest:
        // on this text the difference rarely moves an argmax.)
        Path dir = SharedData.require("models/stories260K");
        try (LoadedModel f32 = ModelLoader.load(dir.resolve("stories260K-f32.gguf"));
             LoadedModel q8 = ModelLoader.load(dir.resolve("stories260K-q8_0.gguf"))) {
            Tokenizer tok = TokenizerLoader.forModel(f32, null);
            LlamaModel model = new LlamaModel(f32, backend);
            Generator plain = new Generator(model, tok);
            Drafter q8Draft = ModelDrafter.separate("stories260K-q8_0", new LlamaModel(q8, backend), TokenizerLoader.forModel(q8, null),
                    model, tok, null);
            SamplingParams penalized = SamplingParams.greedy().withMaxNewTokens(120).withFrequencyPenalty(1.5f)
                    .withPenaltyWindow(SamplingParams.WHOLE_HISTORY);
            for (Drafter drafter : new Drafter[] {q8Draft, new NgramDrafter()}) {
                GenerationResult expected = plain.generate("Once upon a time", penalized, null);
                GenerationResult actual = plain.withSpeculation(new Speculation(drafter, 4)).generate("Once upon a time", penalized, null);
                assertArrayEquals(expected.tokens(), actual.tokens(), drafter.describe());
                assertTrue(actual.decodeStats().acceptedTokens() > 0, drafter.describe() + ": " + actual.decodeStats());
            }
        }
    }

    @Test
    void sampledSpeculativeDecodingIsReproducibleAndStaysInTheVocabulary() {
        Generator plain = new Generator(targetModel, tokenizer);
        Generator speculative = plain.withSpeculation(new Speculation(
                ModelDrafter.separate("small-q8_0", draftModel, tokenizer, targetModel, tokenizer, null), 4));
        SamplingParams params = SamplingParams.defaults().withTemperature(0.8f).withTopP(0.9f).withSeed(3).withMaxNewTokens(30);
        GenerationResult first = speculative.generate(repetitivePrompt(), params, null);
        GenerationResult again = speculative.generate(repetitivePrompt(), params, null);
        assertArrayEquals(first.tokens(), again.tokens());
        assertTrue(first.tokens().length > 0);
        for (int t : first.tokens()) {
            assertTrue(t >= 0 && t < 2048);
        }
    }

    /**
     * Rollback: after a verify step whose drafts were all rejected, their K/V remain in the cache
     * past the sequence's end; continuing the sequence must give the logits of a cache that never
     * saw them.
     */
    @Test
    void rejectedDraftsLeaveNoStaleKeysOrValues() {
        LlamaModel model = targetModel;
        int vocab = model.config().vocabSize();
        int[] prompt = repetitivePrompt();
        int n = prompt.length;
        int[] blockTable = {0, 1, 2, 3, 4, 5};
        int blockSize = 16;
        float[] logits = new float[vocab];
        float[] expected = new float[vocab];
        try (KvCache speculative = model.newKvCache(blockTable.length, blockSize);
             KvCache plain = model.newKvCache(blockTable.length, blockSize)) {
            // Speculative: the prompt but its last token, then one step with the last token and 4 drafts.
            Generator.prefill(model, Arrays.copyOf(prompt, n - 1), blockTable, speculative, logits);
            int[] step = {prompt[n - 1], 7, 8, 9, 10};
            model.forward(BatchPlan.singleSequence(step, n - 1, blockTable, blockSize, step.length), speculative);
            // All drafts rejected, replacement token 11 at position n: feed it after the n cached tokens.
            model.backend().copyRowToHost(model.forward(
                    BatchPlan.singleSequence(new int[] {11, 12}, n, blockTable, blockSize, true), speculative), 0, logits);

            int[] sequence = Arrays.copyOf(prompt, n + 2);
            sequence[n] = 11;
            sequence[n + 1] = 12;
            Generator.prefill(model, sequence, blockTable, plain, expected);
        }
        float maxDifference = 0;
        for (int i = 0; i < vocab; i++) {
            maxDifference = Math.max(maxDifference, Math.abs(logits[i] - expected[i]));
        }
        // NOTE: the two caches were filled by batches of different sizes, whose matmuls may sum in a
        // different order; stale K/V at positions n + 1 .. n + 3 would move the logits by far more.
        assertTrue(maxDifference < 1e-4f, "logits differ by " + maxDifference);
    }
}
