package dev.lathe.tools.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.BatchInvariance;
import dev.lathe.core.testing.ModelLogits;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Q4_K, Q5_K and Q6_K models, as {@code lathe quantize} writes them, on the CPU backend's row tiles
 * (integer products against inputs rounded to 8 bits) against the same file in its own layout
 * (f32 inputs). The tiles' products are checked bit for bit against a scalar definition in core's
 * RowTiledMatrixTest; this is the whole model: every K-quant matrix tiled, prefill (batched
 * products) and decode (single-input products) on one sequence.
 */
class KQuantTilesTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    /** The batching engine's property (core's BatchInvarianceTest) on the K-quants and llama.cpp's Q4_K_M mix. */
    @ParameterizedTest
    @EnumSource(value = QuantMethod.class, names = {"Q4_K", "Q5_K", "Q6_K", "Q4_K_M"})
    void aRequestsLogprobsDoNotDependOnItsBatch(QuantMethod method, @TempDir Path dir) {
        Path f32 = dir.resolve("f32.gguf");
        SyntheticModel.small(GgmlType.F32).write(f32);
        Path quantized = dir.resolve(method.name() + ".gguf");
        ModelQuantizer.quantize(f32, quantized, QuantOptions.of(method), false, QUIET);
        BatchInvariance.check(quantized, method.name());
    }

    @ParameterizedTest
    @EnumSource(value = QuantMethod.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void kQuantTilesAgreeWithTheFileLayout(QuantMethod method, @TempDir Path dir) {
        GgmlType type = GgmlType.valueOf(method.name());
        Path f32 = dir.resolve("f32.gguf");
        SyntheticModel.small(GgmlType.F32).write(f32); // dim 256, FFN 768: whole super-blocks of 256
        Path quantized = dir.resolve(method.name() + ".gguf");
        ModelQuantizer.quantize(f32, quantized, QuantOptions.of(method), false, QUIET);
        Random random = new Random(11);
        int[] prompt = new int[20];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + random.nextInt(2000);
        }
        try (LoadedModel loaded = ModelLoader.load(quantized);
             CpuBackend tiles = new CpuBackend(2, true);
             CpuBackend fileLayout = new CpuBackend(2, false)) {
            assertTrue(loaded.tensors().values().stream().filter(w -> w.type() == type).count() >= 20,
                    "the layers' matrices are " + type);
            LlamaModel tiled = new LlamaModel(loaded, tiles);
            LlamaModel plain = new LlamaModel(loaded, fileLayout);
            float[][] expected = ModelLogits.inOnePrefill(plain, prompt);
            float[][] actual = ModelLogits.inOnePrefill(tiled, prompt);
            float[][] stepByStep = ModelLogits.stepByStep(tiled, prompt);
            double worst = 0;
            for (int t = 0; t < prompt.length; t++) {
                worst = Math.max(worst, ModelLogits.relativeError(expected[t], actual[t]));
            }
            System.out.printf("%s row tiles vs the file's layout: relative logit error at most %.2e over %d positions%n",
                    type, worst, prompt.length);
            for (int t = 0; t < prompt.length; t++) {
                // Rounding the inputs to 8 bits moves these random-weight logits by 1.4e-2 at most
                // for Q4_K (Q4_0's tiles on a model like it: 1.2-1.5e-2); a wrong scale, min,
                // nibble or high bit moves them by far more than 5%.
                double error = ModelLogits.relativeError(expected[t], actual[t]);
                assertTrue(error < 5e-2, "position " + t + ": relative error " + error);
                if (ModelLogits.topGap(expected[t]) > 4 * ModelLogits.maxAbsDifference(expected[t], actual[t])) {
                    assertEquals(Sampler.argmax(expected[t]), Sampler.argmax(actual[t]), "position " + t + ": greedy token");
                }
                // Prefill (batched, decoded tiles) and decode (one input, integer kernels) compute
                // the same products; only attention's summation order differs.
                for (int v = 0; v < actual[t].length; v++) {
                    assertEquals(actual[t][v], stepByStep[t][v], 1e-4, "position " + t + " token " + v);
                }
            }
        }
    }
}
