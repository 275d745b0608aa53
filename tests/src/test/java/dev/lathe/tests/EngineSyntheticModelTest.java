package dev.lathe.tests;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.engine.EngineCore;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.EngineRuns;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine on a synthetic Q8_0 model (GQA, 2048-token vocabulary, quantized weights): a batch
 * of 12 requests, large enough for the batched matmul's dequantize-once path, with shared
 * prefixes, chunked prefill and preemption, against each request run alone by {@link Generator}.
 */
class EngineSyntheticModelTest {

    @Test
    void batchedGreedyOutputsEqualSingleSequenceOutputs(@TempDir Path tmp) {
        Path file = tmp.resolve("small-q8_0.gguf");
        SyntheticModel.small(GgmlType.Q8_0).write(file);
        try (LoadedModel loaded = ModelLoader.load(file); CpuBackend backend = new CpuBackend(2)) {
            Tokenizer tokenizer = TokenizerLoader.forModel(loaded, null);
            LlamaModel model = new LlamaModel(loaded, backend);
            Generator generator = new Generator(model, tokenizer);
            SplittableRandom random = new SplittableRandom(3);
            int[] shared = random.ints(40, 3, 2048).toArray();
            List<Request> requests = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                int own = 1 + random.nextInt(30);
                int[] prompt = new int[(i % 2 == 0 ? shared.length : 0) + own];
                int at = 0;
                if (i % 2 == 0) {
                    System.arraycopy(shared, 0, prompt, 0, shared.length);
                    at = shared.length;
                }
                for (int j = at; j < prompt.length; j++) {
                    prompt[j] = random.nextInt(3, 2048);
                }
                requests.add(Request.ofTokens("s" + i, prompt, SamplingParams.greedy().withMaxNewTokens(10 + random.nextInt(40))));
            }
            Map<String, RequestOutput> outputs;
            // 40 blocks of 16 tokens: some preemption; a budget of 48 tokens: chunked prefill.
            long perBlock = 2L * 4 * 16 * 4 * 32 * 4;
            try (EngineCore core = new EngineCore(model, tokenizer,
                    new EngineConfig(40 * perBlock, 16, new SchedulerConfig(48, 12), true))) {
                outputs = EngineRuns.runToEnd(core, requests);
                assertTrue(core.stats().prefixHitTokens() > 0, core.stats().toString());
            }
            for (Request r : requests) {
                GenerationResult alone = generator.generate(r.promptTokens(), r.sampling(), null);
                assertArrayEquals(alone.tokens(), outputs.get(r.id()).first().tokenIds(), r.id());
                assertEquals(alone.text(), outputs.get(r.id()).first().text(), r.id());
            }
        }
    }
}
