package dev.lathe.core.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.engine.Completion;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.engine.EngineCore;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.TokenLogprobs;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The check behind core's BatchInvarianceTest, for any model file (tools runs it on the K-quants
 * it writes): a watched request runs alone, then among seven others of random lengths, through
 * the batching engine on the CPU backend's row tiles; its tokens and the bits of its top-5
 * log-probabilities must be the same both times. Prompts are token ids 3..2002.
 */
public final class BatchInvariance {
    private BatchInvariance() {
    }

    public static void check(Path file, String label) {
        Random random = TestRandom.create("batch invariance " + label);
        try (CpuBackend backend = new CpuBackend(2); LoadedModel loaded = ModelLoader.load(file)) {
            LlamaModel model = new LlamaModel(loaded, backend);
            var tokenizer = TokenizerLoader.forModel(loaded, null);
            SamplingParams greedy = SamplingParams.greedy().withMaxNewTokens(20);
            Request watched = Request.ofTokens("watched", prompt(random, 37), greedy).withLogprobs(5).withIgnoreEos(true);
            List<Request> batch = new ArrayList<>(List.of(watched));
            for (int i = 0; i < 7; i++) {
                int length = 1 + random.nextInt(40);
                SamplingParams params = SamplingParams.greedy().withMaxNewTokens(5 + random.nextInt(30));
                batch.add(Request.ofTokens("other" + i, prompt(random, length), params).withIgnoreEos(true));
            }
            Completion alone;
            try (EngineCore core = new EngineCore(model, tokenizer, EngineConfig.defaults())) {
                alone = EngineRuns.runToEnd(core, List.of(watched)).get("watched").first();
            }
            Completion among;
            try (EngineCore core = new EngineCore(model, tokenizer, EngineConfig.defaults())) {
                among = EngineRuns.runToEnd(core, batch).get("watched").first();
            }
            assertArrayEquals(alone.tokenIds(), among.tokenIds(), label + ": tokens");
            assertEquals(alone.logprobs().size(), among.logprobs().size());
            for (int i = 0; i < alone.logprobs().size(); i++) {
                TokenLogprobs a = alone.logprobs().get(i);
                TokenLogprobs b = among.logprobs().get(i);
                assertEquals(Float.floatToRawIntBits(a.logprob()), Float.floatToRawIntBits(b.logprob()),
                        label + ": token " + i + " logprob " + a.logprob() + " alone vs " + b.logprob() + " in the batch");
                assertArrayEquals(a.topTokens(), b.topTokens(), label + ": token " + i + " top tokens");
                assertArrayEquals(a.topLogprobs(), b.topLogprobs(), label + ": token " + i + " top logprobs");
            }
        }
    }

    private static int[] prompt(Random random, int length) {
        int[] tokens = new int[length];
        for (int i = 0; i < length; i++) {
            tokens[i] = 3 + random.nextInt(2000);
        }
        return tokens;
    }
}
