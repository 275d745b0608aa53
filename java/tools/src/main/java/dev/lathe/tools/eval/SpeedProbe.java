package dev.lathe.tools.eval;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;

import java.util.Arrays;

/**
 * Prefill and decode speed of a model: a prompt of {@code promptTokens} tokens as one prefill
 * step, then {@code decodeTokens} single-token steps feeding back the argmax (no sampling cost,
 * no early stop). One untimed warm-up run first, so the JIT has compiled the kernels.
 */
public final class SpeedProbe {
    private static final int BLOCK_SIZE = 16;

    private SpeedProbe() {
    }

    public record Speed(double prefillTokensPerSecond, double decodeTokensPerSecond) {
    }

    public static Speed measure(LlamaModel model, int[] prompt, int decodeTokens) {
        if (prompt.length < 1 || decodeTokens < 1) {
            throw new IllegalArgumentException("a speed probe needs a prompt and at least one decode step");
        }
        run(model, prompt, Math.min(decodeTokens, 8)); // warm-up
        return run(model, prompt, decodeTokens);
    }

    private static Speed run(LlamaModel model, int[] prompt, int decodeTokens) {
        int total = prompt.length + decodeTokens;
        if (total > model.config().contextLength()) {
            throw new IllegalArgumentException("prompt + decode tokens (" + total + ") exceed the context length "
                    + model.config().contextLength());
        }
        int blocks = (total + BLOCK_SIZE - 1) / BLOCK_SIZE;
        int[] blockTable = new int[blocks];
        Arrays.setAll(blockTable, i -> i);
        float[] logits = new float[model.config().vocabSize()];
        try (KvCache cache = model.newKvCache(blocks, BLOCK_SIZE)) {
            long start = System.nanoTime();
            Tensor out = model.forward(BatchPlan.singleSequence(prompt, 0, blockTable, BLOCK_SIZE, true), cache);
            model.backend().copyRowToHost(out, 0, logits);
            long prefill = System.nanoTime() - start;
            start = System.nanoTime();
            for (int i = 0; i < decodeTokens; i++) {
                int next = Sampler.argmax(logits);
                out = model.forward(BatchPlan.singleSequence(new int[] {next}, prompt.length + i, blockTable, BLOCK_SIZE, true), cache);
                model.backend().copyRowToHost(out, 0, logits);
            }
            long decode = System.nanoTime() - start;
            return new Speed(prompt.length / (prefill / 1e9), decodeTokens / (decode / 1e9));
        }
    }
}
