package dev.lathe.tools.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.testing.TestRandom;
import dev.lathe.core.tokenizer.Tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPTQ's and AWQ's defining property: on the calibration inputs, the quantized layer's outputs
 * are closer to the full-precision outputs than RTN's at the same bits and group size. Checked
 * on random layers with correlated, outlier-heavy inputs (the case both methods exist for) and
 * on stories260K's first-block projections with their real inputs.
 */
class CalibratedMethodsTest {

    /** Inputs {@code [n, k]}: correlated channels (a random mixing) and a few channels 10x larger. */
    private static float[] activations(Random random, int n, int k) {
        float[] mixing = new float[k * k];
        for (int i = 0; i < mixing.length; i++) {
            mixing[i] = (float) random.nextGaussian() / (float) Math.sqrt(k);
        }
        float[] x = new float[n * k];
        float[] z = new float[k];
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < k; i++) {
                z[i] = (float) random.nextGaussian();
            }
            for (int j = 0; j < k; j++) {
                float sum = z[j] * 0.5f;
                for (int i = 0; i < k; i++) {
                    sum += z[i] * mixing[i * k + j];
                }
                x[t * k + j] = j % 17 == 3 ? 10 * sum : sum;
            }
        }
        return x;
    }

    private static float[] gaussian(Random random, int n, float std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian() * std;
        }
        return v;
    }

    private static double outputError(float[] w, float[] q, int rows, int k, float[] x, int n) {
        return Awq.squaredError(Awq.outputs(w, rows, k, x, n), Awq.outputs(q, rows, k, x, n));
    }

    private static double[] hessian(float[] x, int n, int k) {
        double[] h = new double[k * k];
        Gptq.accumulateHessian(h, x, 0, n, k);
        Gptq.symmetrize(h, k);
        return h;
    }

    private record Errors(double rtn, double gptq, double awq) {
    }

    private static Errors errors(float[] w, int rows, int k, float[] x, int n, LatheFormat format, boolean actOrder) {
        double rtn = outputError(w, Awq.fakeQuantize(w, rows, k, format), rows, k, x, n);
        Gptq.Result g = Gptq.quantize(w, rows, k, hessian(x, n, k), format, 0.01, actOrder);
        double gptq = outputError(w, g.dequantized(), rows, k, x, n);
        Awq.Search s = Awq.searchScales(List.of(new Awq.Linear(w, rows, k)), x, n, format, 20);
        double awq = outputError(w, Awq.quantizeScaled(w, rows, k, s.scales(), format), rows, k, x, n);
        assertEquals(rtn, s.rtnError(), rtn * 1e-9, "alpha 0 of the search is RTN");
        return new Errors(rtn, gptq, awq);
    }

    @Test
    void onRandomLayersGptqAndAwqBeatRtnAtTheSameBitsAndGroup() {
        Random random = TestRandom.create("onRandomLayersGptqAndAwqBeatRtnAtTheSameBitsAndGroup");
        int rows = 40;
        int k = 128;
        int n = 384;
        float[] x = activations(random, n, k);
        float[] w = gaussian(random, rows * k, 0.05f);
        for (LatheFormat format : new LatheFormat[] {LatheFormat.intGroup(4, 32, true), LatheFormat.intGroup(4, 64, false),
                LatheFormat.intGroup(3, 32, true), LatheFormat.intGroup(2, 32, true)}) {
            for (boolean actOrder : new boolean[] {false, true}) {
                Errors e = errors(w, rows, k, x, n, format, actOrder);
                System.out.printf("%s act-order %s: RTN %.4g, GPTQ %.4g, AWQ %.4g%n", format, actOrder, e.rtn(), e.gptq(), e.awq());
                assertTrue(e.gptq() < e.rtn(), format + " act-order " + actOrder + ": GPTQ " + e.gptq() + " vs RTN " + e.rtn());
                assertTrue(e.awq() < e.rtn(), format + ": AWQ " + e.awq() + " vs RTN " + e.rtn());
            }
        }
    }

    @Test
    void gptqLevelsAndGridsDecodeToItsValues() {
        Random random = TestRandom.create("gptqLevelsAndGridsDecodeToItsValues");
        int rows = 3;
        int k = 64;
        float[] x = activations(random, 100, k);
        float[] w = gaussian(random, rows * k, 1);
        LatheFormat format = LatheFormat.intGroup(3, 32, true);
        Gptq.Result r = Gptq.quantize(w, rows, k, hessian(x, 100, k), format, 0.01, true);
        for (int row = 0; row < rows; row++) {
            for (int i = 0; i < k; i++) {
                int level = r.levels()[row * k + i];
                assertTrue(level >= 0 && level <= 7, "a 3-bit level: " + level);
                assertEquals(r.rowGrids(row, 2)[i / 32].value(level), r.dequantized()[row * k + i]);
            }
        }
    }

    @Test
    void onStories260KFirstBlockGptqAndAwqBeatRtn() {
        Path modelPath = SharedData.require("models/stories260K/stories260K-f32.gguf");
        Random random = TestRandom.create("onStories260KFirstBlockGptqAndAwqBeatRtn");
        try (LoadedModel model = ModelLoader.load(modelPath); CpuBackend backend = new CpuBackend(1)) {
            // Real inputs of blk.0's q/k/v: RMS-normed token embeddings of text the model writes.
            int[] tokens = Tokenizers.create(model.vocabulary()).encode(
                    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her mom. "
                    + "One day, she saw a big red ball under a tree. She ran to get it, but a dog took it first.");
            int n = tokens.length;
            HostTensor embedded = new HostTensor(n, 64);
            backend.embed(embedded, model.tensor("token_embd.weight"), tokens);
            HostTensor x = new HostTensor(n, 64);
            backend.rmsNorm(x, embedded, model.tensor("blk.0.attn_norm.weight"), 1e-5f);
            for (String name : new String[] {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"}) {
                WeightMatrix m = model.tensor(name);
                float[] w = new float[m.rows() * m.cols()];
                for (int r = 0; r < m.rows(); r++) {
                    m.dequantizeRow(r, w, r * m.cols());
                }
                for (LatheFormat format : new LatheFormat[] {LatheFormat.intGroup(4, 32, true), LatheFormat.intGroup(2, 32, true)}) {
                    Errors e = errors(w, m.rows(), m.cols(), x.data(), n, format, random.nextBoolean());
                    System.out.printf("%s %s: RTN %.4g, GPTQ %.4g, AWQ %.4g%n", name, format, e.rtn(), e.gptq(), e.awq());
                    assertTrue(e.gptq() < e.rtn(), name + " " + format + ": GPTQ " + e.gptq() + " vs RTN " + e.rtn());
                    assertTrue(e.awq() < e.rtn(), name + " " + format + ": AWQ " + e.awq() + " vs RTN " + e.rtn());
                }
            }
        }
    }

    @Test
    void calibrationTextThatIsEmptyOrTooShortIsAnError(@TempDir Path dir) throws Exception {
        Path modelPath = SharedData.require("models/stories260K/stories260K-f32.gguf");
        try (LoadedModel model = ModelLoader.load(modelPath)) {
            var tokenizer = Tokenizers.create(model.vocabulary());
            Path empty = Files.writeString(dir.resolve("empty.txt"), "  \n");
            IllegalArgumentException e1 = assertThrows(IllegalArgumentException.class,
                    () -> CalibrationText.windows(empty, tokenizer, 4, 64));
            assertTrue(e1.getMessage().contains("empty"), e1.getMessage());
            Path shortText = Files.writeString(dir.resolve("short.txt"), "Once upon a time.");
            IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
                    () -> CalibrationText.windows(shortText, tokenizer, 4, 64));
            assertTrue(e2.getMessage().contains("too short") && e2.getMessage().contains("--seq-len 64"), e2.getMessage());
            IllegalArgumentException e3 = assertThrows(IllegalArgumentException.class,
                    () -> CalibrationText.windows(dir.resolve("missing.txt"), tokenizer, 4, 64));
            assertTrue(e3.getMessage().contains("does not exist"), e3.getMessage());
            List<int[]> windows = CalibrationText.windows(shortText, tokenizer, 4, 3);
            assertEquals(1, windows.get(0)[0], "windows start with BOS");
            assertEquals(3, windows.get(0).length);
        }
    }
}
