package dev.lathe.core.engine;

import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.kv.KvPoolSize;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.EngineRuns;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The int8 KV cache end to end: the engine's sizing (scales counted), greedy stories260K against the
 * f32 cache, and the engine's block sharing (prefix reuse, fork, preemption) against cold int8 runs.
 */
class Int8KvCacheEngineTest {
    private static final String STORIES = "models/stories260K";

    @Test
    void anInt8PoolBudgetsItsScales(@TempDir Path tmp) {
        // headDim + 4 bytes per vector against 4 * headDim (f32) and 2 * headDim (f16).
        assertEquals(2L * 3 * 16 * 4 * (40 + 4), KvPoolSize.bytesPerBlock(3, 16, 4, 40, KvDtype.INT8));
        for (int headDim : new int[] {64, 128}) {
            double vsF32 = (double) KvPoolSize.bytesPerBlock(2, 16, 8, headDim) / KvPoolSize.bytesPerBlock(2, 16, 8, headDim, KvDtype.INT8);
            double vsF16 = (double) KvPoolSize.bytesPerBlock(2, 16, 8, headDim, KvDtype.F16)
                    / KvPoolSize.bytesPerBlock(2, 16, 8, headDim, KvDtype.INT8);
            assertEquals(4.0 * headDim / (headDim + 4), vsF32, 1e-12); // 3.76 at 64, 3.88 at 128
            assertEquals(2.0 * headDim / (headDim + 4), vsF16, 1e-12); // 1.88 at 64, 1.94 at 128
        }

        Path file = tmp.resolve("m.gguf");
        SyntheticModel.small(GgmlType.F32).write(file);
        try (CpuBackend backend = new CpuBackend(1); LoadedModel loaded = ModelLoader.load(file)) {
            LlamaModel model = new LlamaModel(loaded, backend);
            Tokenizer tokenizer = TokenizerLoader.forModel(loaded, null);
            LlamaConfig c = model.config();
            long f32Block = KvPoolSize.bytesPerBlock(c.layers(), 16, c.kvHeads(), c.headDim());
            long int8Block = 2L * c.layers() * 16 * c.kvHeads() * (c.headDim() + 4);
            long budget = 10 * f32Block + f32Block / 2;
            int expected = (int) (budget / int8Block);
            EngineConfig config = EngineConfig.defaults().withKvMemory(budget).withBlockSize(16).withKvDtype(KvDtype.INT8);
            try (EngineCore core = new EngineCore(model, tokenizer, config)) {
                assertEquals(expected, core.usage().total());
                assertTrue(expected > 3 * 10 && expected < 4 * 11, "int8 blocks " + expected + " for 10.5 f32 blocks, headDim " + c.headDim());
                assertTrue(core.describeKvPool().contains(expected + " blocks of 16 tokens, int8"), core.describeKvPool());
            }
        }
    }

    /**
     * Greedy stories260K (dim 64, 8 heads, 4 KV heads, headDim 8, 5 layers), 256 new tokens from
     * three prompts, int8 KV against f32 KV. Observed on the x86 dev box (AVX-512, 2 threads): the
     * first token that differs is at index 114, 79 and 88 ('Once upon a time', 'Tim', 'Lily ...'),
     * the same with -Dlathe.cpu.vectorBits=256, so the quantization, not the summation order, decides
     * where. (At headDim 8 the 512-bit kernels run only their scalar tails; Int8KvCacheTest covers the
     * vector bodies.) headDim 8 is a hard case for a per-vector scale: 8 values share one absmax. Nothing
     * bounds where a near tie in the logits falls, so this asserts the observed minimum with a margin:
     * the first 48 tokens equal. A kernel that drops a scale fails at once (tried by hand: without
     * the value scale token 0 differs).
     */
    @Test
    void stories260KGreedyWithInt8KvFollowsF32Kv() {
        Path dir = SharedData.require(STORIES);
        try (CpuBackend backend = new CpuBackend(2); LoadedModel f32 = ModelLoader.load(dir.resolve("stories260K-f32.gguf"))) {
            Tokenizer tok = TokenizerLoader.forModel(f32, null);
            Generator plain = new Generator(new LlamaModel(f32, backend), tok);
            SamplingParams params = SamplingParams.greedy().withMaxNewTokens(256);
            for (String prompt : new String[] {"Once upon a time", "Tim", "Lily liked to play in the park. One day"}) {
                int[] expected = plain.generate(prompt, params, null).tokens();
                int[] int8 = plain.withKvDtype(KvDtype.INT8).generate(prompt, params, null).tokens();
                System.out.printf("[int8 kv] '%s': first difference from f32 KV at token %d of %d%n", prompt,
                        Arrays.mismatch(expected, int8), Math.min(expected.length, int8.length));
                assertTrue(expected.length >= 48 && int8.length >= 48, "fewer tokens generated than compared");
                assertArrayEquals(Arrays.copyOf(expected, 48), Arrays.copyOf(int8, 48), "int8 KV, prompt '" + prompt + "'");
            }
        }
    }

    /**
     * Prefix reuse, fork (n samples sharing a prompt, copy on write of the partly filled block) and
     * preemption under a small pool all read or copy int8 blocks someone else wrote: every output
     * must equal the same request run cold and alone on an int8 cache.
     *
     * <p>NOTE: this holds because K and V are the same f32 values whichever path computed them, up
     * to the last ulp: for this F32 model a matmul's summation order differs between one row and
     * groups of four (dot vs dot4), and f32 K/V carry those ulps along harmlessly. (The row-tiled
     * Q8_0, Q4_0, F16 and BF16 matrices sum alike however their inputs are grouped:
     * BatchInvarianceTest.) An int8
     * pool turns an ulp into a whole quantization step when a value sits on a rounding boundary, so
     * int8 outputs are more sensitive to batch composition than f32 ones: on the m200 random-weight
     * model (flat logits), two identical `lathe batch --kv-dtype int8` runs differed in 4 of 16
     * requests after 7 to 61 tokens (bench/results/kv-cache.md). With stories260K's sharper logits
     * this test gave the same tokens in every run tried (6 at 512-bit vectors, 2 at 256-bit).
     */
    @Test
    void prefixReuseForkAndPreemptionWithInt8EqualColdInt8Runs() {
        Path dir = SharedData.require(STORIES);
        try (CpuBackend backend = new CpuBackend(2); LoadedModel loaded = ModelLoader.load(dir.resolve("stories260K-f32.gguf"))) {
            Tokenizer tok = TokenizerLoader.forModel(loaded, null);
            LlamaModel model = new LlamaModel(loaded, backend);
            Generator cold = new Generator(model, tok).withKvDtype(KvDtype.INT8);
            String shared = "One day, a little girl named Sue found a shiny red ball in the garden. She wanted to play with it,"
                    + " but her mom said it was time for lunch. Sue was sad, so she";
            EngineConfig base = new EngineConfig(4 << 20, 16, new SchedulerConfig(512, 8), true).withKvDtype(KvDtype.INT8);

            // Prefix reuse: the second request's prompt blocks come from the first's.
            try (EngineCore core = new EngineCore(model, tok, base)) {
                SamplingParams greedy = SamplingParams.greedy().withMaxNewTokens(30);
                RequestOutput first = EngineRuns.runToEnd(core, List.of(Request.ofText("a", shared, greedy))).get("a");
                Request longer = Request.ofText("b", shared + " went to bed.", greedy);
                RequestOutput second = EngineRuns.runToEnd(core, List.of(Request.ofText("w", shared, greedy), longer)).get("w");
                RequestOutput third = EngineRuns.runToEnd(core, List.of(longer.withPriority(1))).get("b");
                assertEquals(0, first.cachedPromptTokens());
                assertTrue(second.cachedPromptTokens() >= 16, "no prefix hit: " + second.cachedPromptTokens());
                assertTrue(third.cachedPromptTokens() >= 16, "no prefix hit: " + third.cachedPromptTokens());
                int[] expected = cold.generate(shared, greedy, null).tokens();
                assertArrayEquals(expected, first.first().tokenIds(), "cold");
                assertArrayEquals(expected, second.first().tokenIds(), "prefix hit");
                assertArrayEquals(cold.generate(shared + " went to bed.", greedy, null).tokens(), third.first().tokenIds(), "longer");
            }

            // Fork: four samples share the prompt's blocks; each equals its seed alone.
            SamplingParams sampled = SamplingParams.defaults().withTemperature(1.0f).withSeed(77).withMaxNewTokens(40);
            try (EngineCore core = new EngineCore(model, tok, base.withScheduler(new SchedulerConfig(64, 8)))) {
                RequestOutput out = EngineRuns.runToEnd(core, List.of(Request.ofText("n", shared, sampled).withN(4))).get("n");
                assertEquals(4, out.completions().size());
                for (Completion c : out.completions()) {
                    GenerationResult alone = cold.generate(out.promptTokens(), sampled.withSeed(77 + c.index()), null);
                    assertArrayEquals(alone.tokens(), c.tokenIds(), "sample " + c.index());
                }
            }

            // Preemption: a pool of 10 blocks for 6 requests; preempted sequences are recomputed into int8 again.
            LlamaConfig c = model.config();
            long tenBlocks = 10 * KvPoolSize.bytesPerBlock(c.layers(), 16, c.kvHeads(), c.headDim(), KvDtype.INT8);
            String[] prompts = {"Once upon a time", "Tim", "The cat sat on the mat and", shared, "The sun was hot", "Lily and Tom"};
            int[] maxNew = {64, 90, 40, 33, 70, 50};
            try (EngineCore core = new EngineCore(model, tok, base.withKvMemory(tenBlocks).withScheduler(new SchedulerConfig(64, 8)))) {
                assertEquals(10, core.usage().total());
                List<Request> requests = new java.util.ArrayList<>();
                for (int i = 0; i < prompts.length; i++) {
                    requests.add(Request.ofText("p" + i, prompts[i], SamplingParams.greedy().withMaxNewTokens(maxNew[i])));
                }
                Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests);
                assertTrue(core.stats().preemptions() > 0, core.stats().toString());
                for (Request r : requests) {
                    assertArrayEquals(cold.generate(r.promptText(), r.sampling(), null).tokens(),
                            outputs.get(r.id()).first().tokenIds(), r.id());
                }
            }
        }
    }

}
