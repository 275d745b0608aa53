package dev.lathe.tools.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizers;
import dev.lathe.tools.quant.ModelQuantizer;
import dev.lathe.tools.quant.QuantMethod;
import dev.lathe.tools.quant.QuantOptions;

import java.awt.image.BufferedImage;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Perplexity's convention against a token-by-token reference, and the comparison report end to end. */
class EvalTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    private static Path stories() {
        return SharedData.require("models/stories260K/stories260K-f32.gguf");
    }

    /** exp(mean NLL) of tokens 1.. by single-token decode steps from an empty cache: a different code path. */
    private static double tokenByTokenPerplexity(LlamaModel model, int[] tokens) {
        int blocks = (tokens.length + 15) / 16;
        int[] table = new int[blocks];
        java.util.Arrays.setAll(table, i -> i);
        float[] logits = new float[model.config().vocabSize()];
        double nll = 0;
        try (KvCache cache = model.newKvCache(blocks, 16)) {
            for (int i = 0; i + 1 < tokens.length; i++) {
                model.backend().copyRowToHost(model.forward(BatchPlan.singleSequence(new int[] {tokens[i]}, i, table, 16, true), cache), 0, logits);
                nll -= Perplexity.logProbability(logits, tokens[i + 1]);
            }
        }
        return Math.exp(nll / (tokens.length - 1));
    }

    @Test
    void oneWindowOverTheWholeTextEqualsTokenByTokenScoring() {
        String text = SampledStories.sample(stories(), 2, 80, 7);
        try (LoadedModel m = ModelLoader.load(stories()); CpuBackend backend = new CpuBackend(1)) {
            LlamaModel model = new LlamaModel(m, backend);
            int[] tokens = ModelComparison.encodeWithBos(Tokenizers.create(m.vocabulary()), text);
            assertTrue(tokens.length > 100 && tokens.length < 512, "fits one window: " + tokens.length);
            Perplexity.Result whole = Perplexity.evaluate(model, tokens, 512, 512);
            assertEquals(tokens.length - 1, whole.scored());
            assertEquals(1, whole.windows());
            assertEquals(tokenByTokenPerplexity(model, tokens), whole.perplexity(), whole.perplexity() * 1e-4);

            Perplexity.Result sliding = Perplexity.evaluate(model, tokens, 64, 16);
            assertEquals(tokens.length - 1, sliding.scored(), "every token after the first is scored once");
            assertEquals((int) Math.ceil((tokens.length - 64) / 16.0) + 1, sliding.windows());
            // Less context per token can only cost a little on this text: same ballpark, not equal.
            assertTrue(sliding.perplexity() > whole.perplexity() * 0.95 && sliding.perplexity() < whole.perplexity() * 1.3,
                    "sliding " + sliding.perplexity() + " vs whole " + whole.perplexity());

            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(model, tokens, 1024, 512));
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(model, tokens, 64, 65));
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(model, new int[] {1}, 64, 32));
        }
    }

    @Test
    void compareWritesTableCsvAndChart(@TempDir Path dir) throws Exception {
        Path text = Files.writeString(dir.resolve("stories.txt"), SampledStories.sample(stories(), 3, 120, 1000));
        Path q8 = dir.resolve("q8_0.gguf");
        Path int4 = dir.resolve("int4.gguf");
        ModelQuantizer.quantize(stories(), q8, QuantOptions.of(QuantMethod.Q8_0), false, QUIET);
        ModelQuantizer.quantize(stories(), int4, QuantOptions.of(QuantMethod.RTN), false, QUIET);
        List<ModelComparison.Row> rows = ModelComparison.compare(new ModelComparison.Variant("F32", stories()),
                List.of(ModelComparison.Variant.parse(q8.toString()), ModelComparison.Variant.parse("INT4 RTN=" + int4)),
                text, 128, 64, 1, QUIET);
        assertEquals(3, rows.size());
        assertEquals(0.0, rows.get(0).changePercent(), 1e-9);
        assertEquals("q8_0 Q8_0", rows.get(1).label());
        assertEquals("INT4 RTN", rows.get(2).label());
        assertTrue(Math.abs(rows.get(1).changePercent()) < 2, "Q8_0 is within 2% of F32: " + rows.get(1));
        assertTrue(rows.get(2).perplexity() > rows.get(1).perplexity(), "INT4 loses more than Q8_0");
        assertTrue(rows.get(2).fileBytes() < rows.get(1).fileBytes() && rows.get(1).fileBytes() < rows.get(0).fileBytes());
        assertTrue(rows.get(0).bitsPerWeight() > 31.9 && rows.get(2).bitsPerWeight() < 8, rows.toString());

        Path out = dir.resolve("report");
        ComparisonReport.write(rows, out, "stories260K");
        String md = Files.readString(out.resolve(ComparisonReport.MARKDOWN));
        assertTrue(md.contains("| INT4 RTN |") && md.contains("perplexity"), md);
        List<String> csv = Files.readAllLines(out.resolve(ComparisonReport.CSV));
        assertEquals(4, csv.size());
        assertTrue(csv.get(0).startsWith("model,method,format,bits_per_weight,size_bytes,perplexity"), csv.get(0));
        BufferedImage png = ImageIO.read(out.resolve(ComparisonReport.CHART).toFile());
        assertNotNull(png, "a readable PNG");
        assertEquals(900, png.getWidth());
    }
}
