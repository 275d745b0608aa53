package dev.lathe.core.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.EngineRuns;
import dev.lathe.core.testing.TestRandom;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A request's log-probabilities are the same bits whether it runs alone or in a batch with
 * others, for the formats the CPU backend keeps in row tiles (Q8_0, Q4_0, F16, BF16: their
 * products do not depend on how many inputs share a matmul). Alone, every matmul of its decode
 * steps has one input; in the batch it has up to eight, and the others' prompts and decodes
 * change what shares each step.
 *
 * <p>NOTE: this fails with {@code -Dlathe.cpu.repack=off} (tried: ggml's block kernels sum one
 * input, four inputs and the dequantized rows of eight or more in three different orders).
 */
class BatchInvarianceTest {

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "F16", "BF16"})
    void aRequestsLogprobsDoNotDependOnItsBatch(GgmlType type, @TempDir Path tmp) {
        Path file = tmp.resolve("m.gguf");
        SyntheticModel.small(type).write(file);
        Random random = TestRandom.create("batch invariance " + type);
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
            assertArrayEquals(alone.tokenIds(), among.tokenIds(), type + ": tokens");
            assertEquals(alone.logprobs().size(), among.logprobs().size());
            for (int i = 0; i < alone.logprobs().size(); i++) {
                TokenLogprobs a = alone.logprobs().get(i);
                TokenLogprobs b = among.logprobs().get(i);
                assertEquals(Float.floatToRawIntBits(a.logprob()), Float.floatToRawIntBits(b.logprob()),
                        type + ": token " + i + " logprob " + a.logprob() + " alone vs " + b.logprob() + " in the batch");
                assertArrayEquals(a.topTokens(), b.topTokens(), type + ": token " + i + " top tokens");
                assertArrayEquals(a.topLogprobs(), b.topLogprobs(), type + ": token " + i + " top logprobs");
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
