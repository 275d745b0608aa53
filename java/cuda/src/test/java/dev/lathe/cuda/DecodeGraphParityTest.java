package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.TestRandom;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Decode steps replayed as CUDA graphs (DecodeGraphs) against the same steps run op by op on the
 * same GPU: greedy tokens must be identical and logits agree to within a few f32 ulps of summation
 * order. Graphs and eager steps run the same kernels on the same data; what may differ is the
 * attention split-KV (the graph's grid is sized by its context bound, 256 then 512, the eager one
 * by the real window), which only changes the order partial softmax sums are merged in.
 * The stats prove the graph path ran (captures, then replays), not a silent fallback.
 */
@Tag("gpu")
class DecodeGraphParityTest {
    private static final int BLOCK_SIZE = 16;
    // A merged split-KV softmax vs an unsplit one: relative error of a few f32 ulps per layer.
    private static final double TOLERANCE = 1e-5;

    @TempDir
    static Path dir;

    private static Path model(GgmlType type, long seed) {
        Path file = dir.resolve("graphs-" + type + ".gguf");
        new SyntheticModel(256, 3, 8, 2, 704, 1000, 256, type, seed).write(file);
        return file;
    }

    /** 17-token prefill, then 300 greedy steps: windows cross the first bound (256) and force a recapture. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "Q8_0"})
    void greedyDecodeIsIdenticalWithGraphs(GgmlType type) {
        Random r = TestRandom.create("DecodeGraphParityTest." + type);
        Path file = model(type, r.nextLong());
        int[] prompt = new int[17];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + r.nextInt(990);
        }
        int steps = 300;
        try (LoadedModel loaded = ModelLoader.load(file);
             CudaBackend eager = CudaBackend.open(0, false);
             CudaBackend graphs = CudaBackend.open(0, true)) {
            float[][] expected = new float[steps][];
            int[] plain = greedy(new LlamaModel(loaded, eager), eager, prompt, steps, expected, KvDtype.F32);
            float[][] actual = new float[steps][];
            int[] graphed = greedy(new LlamaModel(loaded, graphs), graphs, prompt, steps, actual, KvDtype.F32);
            for (int s = 0; s < steps; s++) {
                CudaParityTest.assertClose(expected[s], actual[s], TOLERANCE, type + " decode step " + s);
            }
            assertArrayEquals(plain, graphed, type + ": greedy tokens with graphs");
            DecodeGraphs.Stats stats = graphs.decodeGraphStats();
            System.out.println("[graphs] " + type + " " + stats);
            assertEquals(0, stats.failures(), stats.lastFailure());
            assertTrue(stats.captures() >= 2, "a capture at bound 256 and a recapture at 512: " + stats);
            assertTrue(stats.replays() >= steps - 4, "most decode steps replayed: " + stats);
        }
    }

    /** A 16-bit KV cache under graphs: the pools' dtype is fixed per cache, so per graph. */
    @ParameterizedTest
    @EnumSource(value = KvDtype.class, names = {"F16", "BF16"})
    void halfKvCacheDecodesIdenticallyWithGraphs(KvDtype kvDtype) {
        Random r = TestRandom.create("DecodeGraphParityTest.kv-" + kvDtype.label());
        Path file = model(GgmlType.Q8_0, r.nextLong());
        int[] prompt = new int[9];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + r.nextInt(990);
        }
        int steps = 40;
        try (LoadedModel loaded = ModelLoader.load(file);
             CudaBackend eager = CudaBackend.open(0, false);
             CudaBackend graphs = CudaBackend.open(0, true)) {
            float[][] expected = new float[steps][];
            int[] plain = greedy(new LlamaModel(loaded, eager), eager, prompt, steps, expected, kvDtype);
            float[][] actual = new float[steps][];
            int[] graphed = greedy(new LlamaModel(loaded, graphs), graphs, prompt, steps, actual, kvDtype);
            for (int s = 0; s < steps; s++) {
                CudaParityTest.assertClose(expected[s], actual[s], TOLERANCE, kvDtype + " decode step " + s);
            }
            assertArrayEquals(plain, graphed, kvDtype + ": greedy tokens with graphs");
            DecodeGraphs.Stats stats = graphs.decodeGraphStats();
            System.out.println("[graphs] kv " + kvDtype.label() + " " + stats);
            assertEquals(0, stats.failures(), stats.lastFailure());
            assertTrue(stats.captures() >= 1 && stats.replays() >= steps - 4, stats.toString());
        }
    }

    /**
     * Three sequences decoded together (bucket 4: one padding sequence), then two (bucket 2): each
     * row's logits against the eager step's, and the padding's sink block never disturbs them.
     */
    @Test
    void batchedDecodeMatchesEagerAcrossBuckets() {
        Random r = TestRandom.create("DecodeGraphParityTest.batched");
        Path file = model(GgmlType.Q8_0, r.nextLong());
        try (LoadedModel loaded = ModelLoader.load(file);
             CudaBackend eager = CudaBackend.open(0, false);
             CudaBackend graphs = CudaBackend.open(0, true)) {
            LlamaModel onEager = new LlamaModel(loaded, eager);
            LlamaModel onGraphs = new LlamaModel(loaded, graphs);
            int vocab = onEager.config().vocabSize();
            int[][] tables = {{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}};
            KvCache eagerCache = onEager.newKvCache(12, BLOCK_SIZE);
            KvCache graphCache = onGraphs.newKvCache(12, BLOCK_SIZE);
            int[] lengths = {5, 11, 2};
            int[] next = new int[3];
            for (int s = 0; s < 3; s++) {
                int[] prompt = new int[lengths[s]];
                for (int i = 0; i < prompt.length; i++) {
                    prompt[i] = 3 + r.nextInt(990);
                }
                BatchPlan plan = BatchPlan.singleSequence(prompt, 0, tables[s], BLOCK_SIZE, true);
                float[] a = row(eager, onEager.forward(plan, eagerCache), 0, vocab);
                float[] b = row(graphs, onGraphs.forward(plan, graphCache), 0, vocab);
                CudaParityTest.assertClose(a, b, TOLERANCE, "prefill of sequence " + s);
                next[s] = Sampler.argmax(a);
            }
            for (int step = 0; step < 20; step++) {
                int live = step < 10 ? 3 : 2; // sequence 2 finishes after 10 steps
                BatchPlan plan = decodePlan(next, lengths, tables, live);
                Tensor te = onEager.forward(plan, eagerCache);
                Tensor tg = onGraphs.forward(plan, graphCache);
                assertEquals(live, tg.rows(), "logit rows of a padded step");
                for (int s = 0; s < live; s++) {
                    float[] a = row(eager, te, s, vocab);
                    float[] b = row(graphs, tg, s, vocab);
                    CudaParityTest.assertClose(a, b, TOLERANCE, "step " + step + " sequence " + s);
                    next[s] = Sampler.argmax(a);
                    lengths[s]++;
                }
            }
            DecodeGraphs.Stats stats = graphs.decodeGraphStats();
            System.out.println("[graphs] batched " + stats);
            assertEquals(0, stats.failures(), stats.lastFailure());
            assertEquals(2, stats.captures(), "one graph per bucket (4, then 2): " + stats);
            assertEquals(18, stats.replays(), stats.toString());
            eagerCache.close();
            graphCache.close();
        }
    }

    private static BatchPlan decodePlan(int[] next, int[] lengths, int[][] tables, int live) {
        int[] tokens = new int[live];
        int[] positions = new int[live];
        int[] seqStart = new int[live + 1];
        int[] contextLen = new int[live];
        int[] tableStart = new int[live + 1];
        int[] slots = new int[live];
        int[] logits = new int[live];
        int blocks = 0;
        for (int s = 0; s < live; s++) {
            blocks += tables[s].length;
        }
        int[] table = new int[blocks];
        for (int s = 0; s < live; s++) {
            tokens[s] = next[s];
            positions[s] = lengths[s];
            seqStart[s + 1] = s + 1;
            contextLen[s] = lengths[s];
            System.arraycopy(tables[s], 0, table, tableStart[s], tables[s].length);
            tableStart[s + 1] = tableStart[s] + tables[s].length;
            slots[s] = tables[s][lengths[s] / BLOCK_SIZE] * BLOCK_SIZE + lengths[s] % BLOCK_SIZE;
            logits[s] = s;
        }
        return new BatchPlan(tokens, positions, seqStart, contextLen, tableStart, table, slots, logits, BLOCK_SIZE);
    }

    private static int[] greedy(LlamaModel model, CudaBackend backend, int[] prompt, int steps, float[][] logits,
                                KvDtype kvDtype) {
        int vocab = model.config().vocabSize();
        int total = prompt.length + steps;
        int[] table = new int[(total + BLOCK_SIZE - 1) / BLOCK_SIZE];
        for (int i = 0; i < table.length; i++) {
            table[i] = table.length - 1 - i; // not in order, so a wrong block lookup shows
        }
        KvCache cache = model.newKvCache(table.length, BLOCK_SIZE, kvDtype);
        int[] tokens = new int[steps];
        float[] row = row(backend, model.forward(BatchPlan.singleSequence(prompt, 0, table, BLOCK_SIZE, true), cache), 0,
                vocab);
        int context = prompt.length;
        for (int s = 0; s < steps; s++) {
            int next = Sampler.argmax(row);
            tokens[s] = next;
            row = row(backend, model.forward(BatchPlan.singleSequence(new int[] {next}, context, table, BLOCK_SIZE, true),
                    cache), 0, vocab);
            logits[s] = row;
            context++;
        }
        cache.close();
        return tokens;
    }

    private static float[] row(CudaBackend backend, Tensor t, int row, int vocab) {
        float[] out = new float[vocab];
        backend.copyRowToHost(t, row, out);
        return out;
    }
}
