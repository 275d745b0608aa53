package dev.lathe.tests;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.engine.Completion;
import dev.lathe.core.engine.Engine;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.engine.EngineCore;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.RequestHandle;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.engine.TokenEvent;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.testing.EngineRuns;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batching engine against the single-sequence {@link Generator} on stories260K: whatever the
 * batch, the chunking, the prefix cache or the preemptions, every sequence's output is the one it
 * gets alone.
 */
class EngineEquivalenceTest {
    private static final String DIR = "models/stories260K/";
    private static final String[] PROMPTS = {
        "", "Once upon a time", "The cat sat on the mat and", "Lily and Tom went to the park. They saw a big dog.",
        "One day, a little girl named Sue found a shiny red ball in the garden. She wanted to play with it, but"
            + " her mom said it was time for lunch. Sue was sad, so she",
        "Tim", "The sun was hot", "Once upon a time, there was a little boy",
    };
    private static final int[] MAX_NEW = {40, 64, 17, 90, 33, 120, 5, 70};

    private static CpuBackend backend;
    private static LoadedModel loaded;
    private static LlamaModel model;
    private static Tokenizer tokenizer;
    private static Generator generator;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(2);
        loaded = ModelLoader.load(SharedData.require(DIR + "stories260K.bin"));
        tokenizer = TokenizerLoader.forModel(loaded, SharedData.require(DIR + "tok512.bin"));
        model = new LlamaModel(loaded, backend);
        generator = new Generator(model, tokenizer);
    }

    @AfterAll
    static void close() {
        if (loaded != null) {
            loaded.close();
        }
        if (backend != null) {
            backend.close();
        }
    }

    static EngineConfig config(int tokenBudget, int maxRunning, long kvBytes, boolean prefixCaching) {
        return new EngineConfig(kvBytes, 16, new SchedulerConfig(tokenBudget, maxRunning), prefixCaching);
    }

    static List<Request> mixedRequests(SamplingParams base) {
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
            requests.add(Request.ofText("r" + i, PROMPTS[i], base.withMaxNewTokens(MAX_NEW[i])));
        }
        return requests;
    }

    static GenerationResult alone(Request r) {
        int[] prompt = r.promptTokens() != null ? r.promptTokens() : generator.encodePrompt(r.promptText());
        return generator.generate(prompt, r.sampling(), null);
    }

    static void assertSameAsAlone(Request r, RequestOutput out) {
        GenerationResult expected = alone(r);
        assertArrayEquals(expected.tokens(), out.first().tokenIds(), "tokens of " + r.id());
        assertEquals(expected.text(), out.first().text(), "text of " + r.id());
        assertEquals(expected.finishReason(), out.first().finishReason(), "finish reason of " + r.id());
    }

    @Test
    void everySequenceOfAMixedBatchGeneratesWhatItGeneratesAlone() {
        List<Request> requests = mixedRequests(SamplingParams.greedy());
        // A budget of 24 tokens: the long prompts are prefilled in chunks beside running decodes.
        try (EngineCore core = new EngineCore(model, tokenizer, config(24, 8, 4 << 20, true))) {
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> { });
            for (Request r : requests) {
                assertSameAsAlone(r, outputs.get(r.id()));
            }
        }
    }

    @Test
    void sampledOutputsAlsoMatchAndChunkingChangesNothing() {
        SamplingParams params = SamplingParams.defaults().withTemperature(0.9f).withTopP(0.9f).withSeed(1234)
                .withRepetitionPenalty(1.1f);
        List<Request> requests = mixedRequests(params);
        Map<String, RequestOutput> chunked;
        Map<String, RequestOutput> whole;
        try (EngineCore core = new EngineCore(model, tokenizer, config(7, 3, 4 << 20, false))) {
            chunked = EngineRuns.runToEnd(core, requests, step -> { });
        }
        try (EngineCore core = new EngineCore(model, tokenizer, config(4096, 64, 4 << 20, false))) {
            whole = EngineRuns.runToEnd(core, requests, step -> { });
        }
        for (Request r : requests) {
            assertArrayEquals(whole.get(r.id()).first().tokenIds(), chunked.get(r.id()).first().tokenIds(), r.id());
            assertSameAsAlone(r, chunked.get(r.id()));
        }
    }

    @Test
    void aPrefixCacheHitSkipsTheCachedPrefillAndChangesNothing() {
        String shared = PROMPTS[4];
        Request cold = Request.ofText("cold", shared, SamplingParams.greedy().withMaxNewTokens(30));
        Request warm = Request.ofText("warm", shared, SamplingParams.greedy().withMaxNewTokens(30));
        Request longer = Request.ofText("longer", shared + " went to bed.", SamplingParams.greedy().withMaxNewTokens(30));
        int promptLength = generator.encodePrompt(shared).length;
        try (EngineCore core = new EngineCore(model, tokenizer, config(512, 8, 4 << 20, true))) {
            RequestOutput first = EngineRuns.runToEnd(core, List.of(cold), s -> { }).get("cold");
            assertEquals(0, first.cachedPromptTokens());
            RequestOutput second = EngineRuns.runToEnd(core, List.of(warm, longer), s -> { }).get("warm");
            int cached = (promptLength - 1) / 16 * 16;
            assertTrue(cached >= 16, "the test prompt should span several blocks: " + promptLength);
            assertEquals(cached, second.cachedPromptTokens());
            // Computed: the uncached prompt tail, then one step per generated token but the last.
            assertEquals(promptLength + first.first().tokenIds().length - 1, first.computedTokens());
            assertEquals(promptLength - cached + second.first().tokenIds().length - 1, second.computedTokens());
            assertArrayEquals(first.first().tokenIds(), second.first().tokenIds());
            assertEquals(first.first().text(), second.first().text());
            assertSameAsAlone(longer, EngineRuns.runToEnd(core, List.of(longer.withPriority(1)), s -> { }).get("longer"));
            assertTrue(core.usage().cached() > 0, core.usage().toString());
        }
    }

    @Test
    void preemptedThenResumedEqualsUninterrupted() {
        List<Request> requests = mixedRequests(SamplingParams.greedy());
        try (EngineCore core = new EngineCore(model, tokenizer, config(32, 8, 4 << 20, true))) {
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> {
                if (step % 9 == 4) {
                    core.preempt("r" + (step / 9 % PROMPTS.length));
                }
            });
            assertTrue(core.stats().preemptions() >= 3, core.stats().toString());
            for (Request r : requests) {
                assertSameAsAlone(r, outputs.get(r.id()));
            }
        }
    }

    @Test
    void runningOutOfBlocksPreemptsAndRecomputesWithoutChangingOutputs() {
        List<Request> requests = mixedRequests(SamplingParams.greedy());
        // 10 blocks of 16 tokens: enough for any one request alone (the engine checks), far from all of them.
        long kvBytes = 10L * 2 * 5 * 16 * 4 * 8 * 4;
        try (EngineCore core = new EngineCore(model, tokenizer, config(64, 8, kvBytes, true))) {
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> { });
            assertTrue(core.stats().preemptions() > 0, core.stats().toString());
            for (Request r : requests) {
                assertSameAsAlone(r, outputs.get(r.id()));
            }
        }
    }

    @Test
    void abortFreesEverythingAtAnyTime() {
        List<Request> requests = mixedRequests(SamplingParams.greedy());
        try (EngineCore core = new EngineCore(model, tokenizer, config(16, 4, 4 << 20, true))) {
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> {
                if (step == 2) {
                    core.abort("r4"); // mid-prefill of a long prompt
                    core.abort("r7"); // still waiting
                }
                if (step == 12) {
                    core.abort("r1"); // decoding
                }
            });
            for (String id : List.of("r4", "r7", "r1")) {
                assertEquals("abort", outputs.get(id).first().finishReason(), id);
            }
            assertSameAsAlone(requests.get(0), outputs.get("r0"));
            assertEquals(0, core.usage().used());
        }
    }

    @Test
    void nSamplesShareThePromptAndEachEqualsItsSeedAlone() {
        SamplingParams params = SamplingParams.defaults().withTemperature(1.0f).withSeed(77).withMaxNewTokens(40);
        Request r = Request.ofText("n", PROMPTS[3], params).withN(4);
        try (EngineCore core = new EngineCore(model, tokenizer, config(64, 8, 4 << 20, true))) {
            RequestOutput out = EngineRuns.runToEnd(core, List.of(r), s -> { }).get("n");
            assertEquals(4, out.completions().size());
            int promptLength = out.promptTokens().length;
            long generated = 0;
            for (Completion c : out.completions()) {
                GenerationResult expected = generator.generate(out.promptTokens(), params.withSeed(77 + c.index()), null);
                assertArrayEquals(expected.tokens(), c.tokenIds(), "sample " + c.index());
                assertEquals(expected.text(), c.text());
                generated += Math.max(0, c.tokenIds().length - 1) + (c.finishReason().equals("stop") ? 1 : 0);
            }
            // The prompt was computed once for all four samples.
            assertEquals(promptLength + generated, out.computedTokens());
        }
    }

    @Test
    void threadedEngineStreamsCancelsAndReportsLogprobs() throws Exception {
        try (Engine engine = new Engine(model, tokenizer, config(64, 8, 4 << 20, true))) {
            List<Request> requests = mixedRequests(SamplingParams.greedy());
            List<RequestOutput> outputs = engine.generate(requests);
            for (int i = 0; i < requests.size(); i++) {
                assertSameAsAlone(requests.get(i), outputs.get(i));
            }

            RequestHandle streamed = engine.submit(Request.ofText("s", PROMPTS[1], SamplingParams.greedy().withMaxNewTokens(50))
                    .withLogprobs(3));
            StringBuilder text = new StringBuilder();
            for (Iterator<TokenEvent> it = streamed.tokens(); it.hasNext(); ) {
                TokenEvent e = it.next();
                text.append(e.text());
                if (e.token() >= 0) {
                    assertEquals(e.token(), e.logprobs().topTokens()[0], "greedy picks the most likely token");
                    assertEquals(e.logprobs().logprob(), e.logprobs().topLogprobs()[0], 1e-6f);
                }
            }
            RequestOutput out = streamed.await();
            assertEquals(out.first().text(), text.toString());
            assertEquals(out.first().tokenIds().length, out.first().logprobs().size());

            RequestHandle cancelled = engine.submit(Request.ofText("c", PROMPTS[0], SamplingParams.greedy().withMaxNewTokens(400)));
            cancelled.tokens().next();
            cancelled.cancel();
            assertEquals("abort", cancelled.await().first().finishReason());
            assertTrue(cancelled.await().first().tokenIds().length < 400);
            assertEquals(0, engine.usage().used());

            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(Request.ofTokens("bad", new int[] {1, 9999}, SamplingParams.greedy())));
            assertTrue(bad.getMessage().contains("request bad: prompt token 1 = 9999"), bad.getMessage());
        }
    }
}
