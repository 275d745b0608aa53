package dev.lathe.cli;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Prefill and decode speed of a model, measured the way llama-bench does: a prompt of random
 * token ids, then greedy decode steps that ignore end-of-sequence, repeated for a median.
 */
final class Throughput {

    /** Tokens/s figures over the repeats: median, min and max. */
    record Figure(double median, double min, double max) {
        static Figure of(double[] values) {
            double[] sorted = values.clone();
            Arrays.sort(sorted);
            int n = sorted.length;
            double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
            return new Figure(median, sorted[0], sorted[n - 1]);
        }

        @Override
        public String toString() {
            return String.format("%.2f (min %.2f, max %.2f)", median, min, max);
        }
    }

    record Result(Figure prefill, Figure decode) {
    }

    static Result measure(LlamaModel model, int promptTokens, int genTokens, int repeats, KvDtype kvDtype) {
        int vocab = model.config().vocabSize();
        int total = promptTokens + genTokens;
        if (total > model.config().contextLength()) {
            throw new IllegalArgumentException("--prompt-tokens + --gen-tokens = " + total
                    + " exceeds the model's context length " + model.config().contextLength());
        }
        int blocks = (total + Generator.BLOCK_SIZE - 1) / Generator.BLOCK_SIZE;
        int[] blockTable = new int[blocks];
        Arrays.setAll(blockTable, i -> i);
        double[] prefill = new double[repeats];
        double[] decode = new double[repeats];
        SplittableRandom random = new SplittableRandom(7);
        float[] logits = new float[vocab];
        // One untimed warm-up run lets the JIT compile the kernels first.
        for (int r = -1; r < repeats; r++) {
            try (KvCache cache = model.newKvCache(blocks, Generator.BLOCK_SIZE, kvDtype)) {
                int[] prompt = random.ints(promptTokens, 0, vocab).toArray();
                long start = System.nanoTime();
                Generator.prefill(model, prompt, blockTable, cache, logits);
                long prefillNanos = System.nanoTime() - start;
                start = System.nanoTime();
                for (int i = 0; i < genTokens; i++) {
                    int next = Sampler.argmax(logits);
                    Tensor out = model.forward(BatchPlan.singleSequence(new int[] {next}, promptTokens + i, blockTable,
                            Generator.BLOCK_SIZE, true), cache);
                    model.backend().copyRowToHost(out, 0, logits);
                }
                long decodeNanos = System.nanoTime() - start;
                if (r >= 0) {
                    prefill[r] = promptTokens * 1e9 / prefillNanos;
                    decode[r] = genTokens * 1e9 / decodeNanos;
                }
            }
        }
        return new Result(Figure.of(prefill), Figure.of(decode));
    }
}
