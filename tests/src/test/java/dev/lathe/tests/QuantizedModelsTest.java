package dev.lathe.tests;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.ModelLogits;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Quantized stories260K files: they generate, and agree with a dequantize-to-f32 reference of the same file. */
class QuantizedModelsTest {
    private static final String DIR = "models/stories260K/";
    private static CpuBackend backend;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"stories260K-q8_0.gguf", "stories260K-q4_0.gguf"})
    void quantizedGgufAgreesWithItsDequantizedReference(String file) {
        try (LoadedModel quantized = ModelLoader.load(SharedData.require(DIR + file));
             LoadedModel reference = DequantizedReference.of(quantized);
             CpuBackend fileLayout = new CpuBackend(2, false)) {
            assertTrue(quantized.tensors().values().stream().anyMatch(w -> w.type() != GgmlType.F32), "file holds quantized tensors");
            LlamaModel fast = new LlamaModel(quantized, backend);
            LlamaModel plain = new LlamaModel(reference, backend);
            Generator generator = new Generator(fast, TokenizerLoader.forModel(quantized, null));
            GenerationResult result = generator.generate("", SamplingParams.greedy().withMaxNewTokens(64), null);
            assertEquals(64, result.tokens().length);
            assertTrue(result.text().contains(" "), "generates words: " + result.text());

            // Teacher-forced on the same sequence, the logits of the file's block kernels and of
            // the f32 reference agree at every position. Tolerance: both compute the same f32
            // products of the same weight values; only the order of the sums differs (block-wise
            // vs row-wise), worth ~1e-6 relative per dot product, compounded over 5 layers. 2e-3
            // absolute on logits of magnitude ~10 is far below any real disagreement (a wrong
            // scale or nibble order moves logits by >0.1).
            int[] sequence = new int[result.tokens().length + 1];
            sequence[0] = 1; // BOS
            System.arraycopy(result.tokens(), 0, sequence, 1, result.tokens().length);
            float[][] expected = ModelLogits.inOnePrefill(plain, sequence);
            float[][] blocks = ModelLogits.inOnePrefill(new LlamaModel(quantized, fileLayout), sequence);
            double worst = ModelLogits.maxAbsDifference(expected, blocks);
            System.out.printf("%s, file layout: max |logit difference| vs dequantized f32 reference = %.2e over %d positions%n",
                    file, worst, sequence.length);
            assertTrue(worst < 2e-3, file + ": logits differ by " + worst);

            // The row tiles: Q8_0 computes the same f32 products. Q4_0 rounds each 32-value block
            // of every input to 8 bits first (the tiles' unit tests check those products bit for
            // bit): each input moves by at most 1/254 of its block's largest value. Measured
            // here: 0.21 at most on logits of magnitude ~10, and the same greedy token at all 65
            // positions. The bounds leave room (2x, and two positions) for a different seed's story.
            float[][] tiles = ModelLogits.inOnePrefill(fast, sequence);
            double tilesWorst = ModelLogits.maxAbsDifference(expected, tiles);
            int sameArgmax = 0;
            for (int t = 0; t < sequence.length; t++) {
                sameArgmax += Sampler.argmax(expected[t]) == Sampler.argmax(tiles[t]) ? 1 : 0;
            }
            System.out.printf("%s, row tiles: max |logit difference| %.2e, same argmax at %d of %d positions%n",
                    file, tilesWorst, sameArgmax, sequence.length);
            boolean rounded = quantized.tensors().values().stream().anyMatch(w -> w.type() == GgmlType.Q4_0);
            assertTrue(tilesWorst < (rounded ? 0.5 : 2e-3), file + ": tiled logits differ by " + tilesWorst);
            assertTrue(sameArgmax >= sequence.length - (rounded ? 2 : 0), file + ": argmax agrees at " + sameArgmax);
        }
    }

    @Test
    void prefillAndStepByStepDecodeGiveTheSameLogits() {
        try (LoadedModel loaded = ModelLoader.load(SharedData.require(DIR + "stories260K-q4_0.gguf"))) {
            LlamaModel model = new LlamaModel(loaded, backend);
            int[] sequence = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401};
            float[][] batched = ModelLogits.inOnePrefill(model, sequence);
            float[][] steps = ModelLogits.stepByStep(model, sequence);
            for (int t = 0; t < sequence.length; t++) {
                for (int v = 0; v < steps[t].length; v++) {
                    // Same arithmetic per row; only the thread split may differ: 1e-4 is rounding-level.
                    assertEquals(batched[t][v], steps[t][v], 1e-4, "position " + t + " token " + v);
                }
            }
        }
    }

    @Test
    void llama2cInt8ExportGeneratesTheReferenceStory() throws IOException {
        int[] fp32Reference = Stories260KGoldenTest.referenceIds();
        try (LoadedModel loaded = ModelLoader.load(SharedData.require(DIR + "stories260K_q80.bin"))) {
            Generator generator = new Generator(new LlamaModel(loaded, backend),
                    TokenizerLoader.forModel(loaded, SharedData.require(DIR + "tok512.bin")));
            GenerationResult result = generator.generate("", SamplingParams.greedy().withMaxNewTokens(64), null);
            // Coherent text: greedy decoding of the int8 weights follows the fp32 model's story for
            // its first 64 tokens (group-64 int8 keeps every logit within ~1% here).
            assertArrayEquals(Arrays.copyOf(fp32Reference, 64), result.tokens(), result.text());
            assertTrue(result.text().startsWith("Once upon a time"), result.text());
        }
    }
}
