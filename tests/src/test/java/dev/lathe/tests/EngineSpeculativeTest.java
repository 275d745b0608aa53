package dev.lathe.tests;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.engine.EngineCore;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.spec.Drafter;
import dev.lathe.core.spec.ModelDrafter;
import dev.lathe.core.spec.NgramDrafter;
import dev.lathe.core.spec.Speculation;
import dev.lathe.core.testing.EngineRuns;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding inside the batching engine on stories260K: per-sequence drafts under a
 * token budget that trims them, with prefix caching and preemption, must leave every greedy
 * output equal to plain single-sequence decoding, for every drafter, and free every block.
 */
class EngineSpeculativeTest {
    private static final String DIR = "models/stories260K/";
    private static final String[] PROMPTS = {
        "Once upon a time", "The cat sat on the mat and", "Lily and Tom went to the park. They saw a big dog.",
        "One day, a little girl named Sue found a shiny red ball in the garden. She wanted to play with it, but"
            + " her mom said it was time for lunch. Sue was sad, so she",
        "One day, a little girl named Sue found a shiny red ball in the garden. She said: the ball is red.",
        "Tim", "Once upon a time, there was a little boy",
    };
    private static final int[] MAX_NEW = {60, 17, 90, 33, 80, 5, 70};

    private static CpuBackend backend;
    private static LoadedModel target;
    private static LoadedModel draft;
    private static LlamaModel model;
    private static Tokenizer tokenizer;
    private static Generator generator;
    private static List<Drafter> drafters;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(2);
        target = ModelLoader.load(SharedData.require(DIR + "stories260K-f32.gguf"));
        draft = ModelLoader.load(SharedData.require(DIR + "stories260K-q8_0.gguf"));
        tokenizer = TokenizerLoader.forModel(target, null);
        model = new LlamaModel(target, backend);
        generator = new Generator(model, tokenizer);
        drafters = List.of(new NgramDrafter(), ModelDrafter.selfSpeculative(model, 3),
                ModelDrafter.separate("q8_0", new LlamaModel(draft, backend), TokenizerLoader.forModel(draft, null),
                        model, tokenizer, null));
    }

    @AfterAll
    static void close() {
        if (target != null) {
            target.close();
            draft.close();
        }
        if (backend != null) {
            backend.close();
        }
    }

    private static List<Request> requests() {
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
            requests.add(Request.ofText("r" + i, PROMPTS[i], SamplingParams.greedy().withMaxNewTokens(MAX_NEW[i])));
        }
        return requests;
    }


    private static void assertSameAsAlone(List<Request> requests, Map<String, RequestOutput> outputs, String what) {
        for (Request r : requests) {
            GenerationResult expected = generator.generate(generator.encodePrompt(r.promptText()), r.sampling(), null);
            RequestOutput out = outputs.get(r.id());
            assertArrayEquals(expected.tokens(), out.first().tokenIds(), what + ": tokens of " + r.id());
            assertEquals(expected.text(), out.first().text(), what + ": text of " + r.id());
            assertEquals(expected.finishReason(), out.first().finishReason(), what + ": finish reason of " + r.id());
        }
    }

    @Test
    void greedyOutputsUnderBudgetPrefixCacheAndPreemptionEqualPlainDecoding() {
        for (Drafter drafter : drafters) {
            // A budget of 20 tokens: prompts are chunked and drafts trimmed; every 7th step preempts someone.
            EngineConfig config = new EngineConfig(4 << 20, 16, new SchedulerConfig(20, 5), true)
                    .withSpeculation(new Speculation(drafter, 4));
            try (EngineCore core = new EngineCore(model, tokenizer, config)) {
                List<Request> requests = requests();
                Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> {
                    if (step % 7 == 3) {
                        core.preempt("r" + (step / 7 % PROMPTS.length));
                    }
                });
                EngineCore.Stats stats = core.stats();
                assertTrue(stats.draftedTokens() > 0 && stats.acceptedTokens() > 0, drafter.describe() + ": " + stats);
                assertTrue(stats.preemptions() > 0 && stats.prefixHitTokens() > 0, drafter.describe() + ": " + stats);
                assertSameAsAlone(requests, outputs, drafter.describe());
            }
        }
    }

    @Test
    void stopStringsAndStopTokensInsideAcceptedDraftsEndTheOutputWhereThePlainOneEnds() {
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
            SamplingParams params = SamplingParams.greedy().withMaxNewTokens(200).withStopStrings(List.of(i % 2 == 0 ? "Lily" : "."));
            requests.add(Request.ofText("s" + i, PROMPTS[i], params));
            // No stop string and a long budget: some of these end on EOS.
            requests.add(Request.ofText("e" + i, PROMPTS[i], SamplingParams.greedy().withMaxNewTokens(300)));
        }
        EngineConfig config = new EngineConfig(4 << 20, 16, new SchedulerConfig(64, 8), true)
                .withSpeculation(new Speculation(drafters.get(2), 6));
        try (EngineCore core = new EngineCore(model, tokenizer, config)) {
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> { });
            assertSameAsAlone(requests, outputs, "stops");
            assertTrue(outputs.values().stream().anyMatch(o -> o.first().finishReason().equals("stop")));
        }
    }

    @Test
    void runningOutOfBlocksWithDraftsPreemptsAndChangesNothing() {
        // 12 blocks of 16 tokens: far from enough for all requests with their drafts.
        long kvBytes = 12L * 2 * 5 * 16 * 4 * 8 * 4;
        EngineConfig config = new EngineConfig(kvBytes, 16, new SchedulerConfig(64, 8), true)
                .withSpeculation(new Speculation(drafters.get(2), 5));
        try (EngineCore core = new EngineCore(model, tokenizer, config)) {
            List<Request> requests = requests();
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> { });
            assertTrue(core.stats().preemptions() > 0, core.stats().toString());
            assertSameAsAlone(requests, outputs, "tight KV");
        }
    }

    @Test
    void sampledForkedRequestsRunToTheEndAndFreeEverything() {
        SamplingParams params = SamplingParams.defaults().withTemperature(0.9f).withTopP(0.95f).withSeed(9).withMaxNewTokens(50);
        List<Request> requests = List.of(Request.ofText("n", PROMPTS[2], params).withN(3),
                Request.ofText("lp", PROMPTS[0], params).withLogprobs(2));
        EngineConfig config = new EngineConfig(4 << 20, 16, new SchedulerConfig(32, 8), true)
                .withSpeculation(new Speculation(drafters.get(1), 3));
        try (EngineCore core = new EngineCore(model, tokenizer, config)) {
            Map<String, RequestOutput> outputs = EngineRuns.runToEnd(core, requests, step -> { });
            assertEquals(3, outputs.get("n").completions().size());
            for (var c : outputs.get("n").completions()) {
                assertTrue(c.tokenIds().length > 0);
            }
            // Log-probabilities need one row of logits per token: that request decodes without drafts.
            assertEquals(outputs.get("lp").first().tokenIds().length, outputs.get("lp").first().logprobs().size());
            assertTrue(core.stats().draftedTokens() > 0, core.stats().toString());
        }
    }
}
