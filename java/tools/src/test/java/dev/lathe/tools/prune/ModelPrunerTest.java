package dev.lathe.tools.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufModelReader;
import dev.lathe.core.gguf.GgufTensorInfo;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Tokenizers;
import dev.lathe.tools.eval.ModelComparison;
import dev.lathe.tools.eval.Perplexity;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code lathe prune} end to end on a small synthetic model (random weights, Lathe's synthetic
 * vocabulary, so no shared data is needed): what is written, that it loads and runs, its shapes,
 * Block Influence on a block made close to the identity, and the errors.
 */
class ModelPrunerTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
    // dim 64, 4 layers, 8 heads of 8 in 4 KV groups, FFN 160 (a multiple of 32), vocab 300
    private static final SyntheticModel SHAPE = new SyntheticModel(64, 4, 8, 4, 160, 300, 256, GgmlType.F32, 11);

    @TempDir
    static Path dir;
    static Path model;
    static Path calib;

    @BeforeAll
    static void writeModel() throws IOException {
        model = dir.resolve("synthetic.gguf");
        SHAPE.write(model);
        calib = dir.resolve("calib.txt");
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 200; i++) {
            text.append("the little cat ").append(i % 7 == 0 ? "ran to the park. " : "sat on a mat and ").append(i).append(' ');
        }
        Files.writeString(calib, text);
    }

    private static PruneOptions unstructured(PruneMethod method, SparsityTarget target, PruneOptions.Store store, int int4) {
        return new PruneOptions(method, target, 0, 0, 0, calib, 4, 64, store, int4);
    }

    private static PruneOptions structured(double heads, double ffn, int dropLayers) {
        return new PruneOptions(PruneMethod.MAGNITUDE, null, heads, ffn, dropLayers, calib, 4, 64, PruneOptions.Store.DENSE, 0);
    }

    /** Loads {@code file}, runs a forward pass over a short prompt, returns its config (the NLL must be finite). */
    private static LlamaConfig loadsAndRuns(Path file) {
        try (LoadedModel m = ModelLoader.load(file); CpuBackend backend = new CpuBackend(2)) {
            int[] tokens = Tokenizers.create(m.vocabulary()).encode("the little cat sat on a mat");
            int[] withBos = new int[tokens.length + 1];
            withBos[0] = 1;
            System.arraycopy(tokens, 0, withBos, 1, tokens.length);
            double nll = Perplexity.evaluate(new LlamaModel(m, backend), withBos, withBos.length, withBos.length).meanNll();
            assertTrue(Double.isFinite(nll), "NLL " + nll);
            return m.config();
        }
    }

    @Test
    void everyMethodWritesTheRequestedSparsity() {
        for (PruneMethod method : PruneMethod.values()) {
            for (SparsityTarget target : new SparsityTarget[] {SparsityTarget.unstructured(0.5), SparsityTarget.pattern(2, 4)}) {
                Path out = dir.resolve(method + "-" + target.m() + ".gguf");
                ModelPruner.prune(model, out, unstructured(method, target, PruneOptions.defaultStore(target), 0), true, QUIET);
                loadsAndRuns(out);
                try (LoadedModel m = ModelLoader.load(out)) {
                    for (var e : m.tensors().entrySet()) {
                        if (!e.getKey().startsWith("blk.") || e.getValue().rows() == 1) {
                            continue;
                        }
                        WeightMatrix w = e.getValue();
                        if (target.is24()) {
                            assertEquals(LatheFormat.sparse24F16(), w.format(), e.getKey());
                        }
                        float[] row = new float[w.cols()];
                        for (int r = 0; r < w.rows(); r++) {
                            w.dequantizeRow(r, row, 0);
                            int zeros = 0;
                            for (float v : row) {
                                zeros += v == 0 ? 1 : 0;
                            }
                            assertEquals(w.cols() / 2, zeros, method + " " + target + " " + e.getKey() + " row " + r);
                        }
                    }
                }
            }
        }
    }

    @Test
    void sparseGptWithInt4Writes24Int4() {
        Path out = dir.resolve("sparsegpt-24-int4.gguf");
        ModelPruner.prune(model, out, unstructured(PruneMethod.SPARSEGPT, SparsityTarget.pattern(2, 4), PruneOptions.Store.SPARSE24, 64),
                true, QUIET);
        loadsAndRuns(out);
        try (LoadedModel m = ModelLoader.load(out)) {
            assertEquals(LatheFormat.sparse24Int4(64, true), m.tensor("blk.0.ffn_up.weight").format());
            // ffn_down's rows are 160 columns: no whole number of 64-column groups, but 5 metadata words
            assertEquals(LatheFormat.sparse24F16(), m.tensor("blk.3.ffn_down.weight").format());
        }
    }

    @Test
    void evalCompareTakesPrunedVariants() throws IOException {
        Path text = dir.resolve("eval.txt");
        Files.writeString(text, Files.readString(calib).substring(0, 400));
        Path sparse = dir.resolve("compare-24.gguf");
        ModelPruner.prune(model, sparse, unstructured(PruneMethod.WANDA, SparsityTarget.pattern(2, 4), PruneOptions.Store.SPARSE24, 0),
                true, QUIET);
        Path cut = dir.resolve("compare-cut.gguf");
        ModelPruner.prune(model, cut, structured(0.25, 0, 0), true, QUIET);
        List<ModelComparison.Row> rows = ModelComparison.compare(new ModelComparison.Variant("dense", model),
                List.of(new ModelComparison.Variant(null, sparse), new ModelComparison.Variant("heads -25%", cut)), text, 64, 64, 2, QUIET);
        assertEquals(3, rows.size());
        assertEquals("prune wanda 2:4", rows.get(1).method());
        assertEquals("2:4-F16", rows.get(1).format());
        assertEquals("prune structured", rows.get(2).method());
        assertTrue(rows.get(1).fileBytes() < rows.get(0).fileBytes() && rows.get(2).fileBytes() < rows.get(0).fileBytes());
        for (ModelComparison.Row r : rows) {
            assertTrue(Double.isFinite(r.perplexity()) && r.perplexity() > 1, r.toString());
        }
    }

    @Test
    void headFfnAndLayerCutsGiveASmallerModelThatRuns() {
        Path out = dir.resolve("cut.gguf");
        ModelPruner.Summary s = ModelPruner.prune(model, out, structured(0.25, 0.25, 1), true, QUIET);
        LlamaConfig c = loadsAndRuns(out);
        assertEquals(3, c.layers());
        assertEquals(3, c.kvHeads());
        assertEquals(6, c.heads());
        assertEquals(8, c.headDim());
        assertEquals(120, c.ffnDim());
        assertEquals(64, c.dim());
        assertFalse(s.notes().isEmpty());
        try (LoadedModel m = ModelLoader.load(out)) {
            assertEquals(48, m.tensor("blk.2.attn_q.weight").rows());
            assertEquals(24, m.tensor("blk.2.attn_k.weight").rows());
            assertEquals(48, m.tensor("blk.2.attn_output.weight").cols());
            assertEquals(120, m.tensor("blk.0.ffn_down.weight").cols());
            assertTrue(m.optionalTensor("blk.3.attn_q.weight") == null);
        }
    }

    /**
     * A block whose attention output and FFN down projection are scaled by 1e-4 adds almost
     * nothing to the residual stream: its output is close to its input, its Block Influence the
     * lowest, so it is the one dropped.
     */
    @Test
    void blockInfluenceDropsTheBlockClosestToTheIdentity() throws IOException {
        int identityLayer = 2;
        Path nearIdentity = dir.resolve("near-identity.gguf");
        try (Arena arena = Arena.ofShared()) {
            GgufFile gguf = GgufFile.open(model, arena);
            LoadedModel m = GgufModelReader.fromFile(gguf, arena);
            PrunedModelWriter writer = new PrunedModelWriter(gguf, arena, java.util.Set.of());
            for (GgufTensorInfo info : gguf.tensors().values()) {
                WeightMatrix w = m.tensor(info.name());
                if (info.name().equals("blk." + identityLayer + ".attn_output.weight")
                        || info.name().equals("blk." + identityLayer + ".ffn_down.weight")) {
                    float[] v = ModelPruner.dequantize(w);
                    for (int i = 0; i < v.length; i++) {
                        v[i] *= 1e-4f;
                    }
                    writer.put(info.name(), v, w.rows(), w.cols(), GgmlType.F32, false);
                } else {
                    writer.copy(info, w, info.name());
                }
            }
            writer.write(nearIdentity, true);
        }
        Path out = dir.resolve("dropped.gguf");
        ModelPruner.Summary s = ModelPruner.prune(nearIdentity, out, structured(0, 0, 1), true, QUIET);
        assertEquals(3, loadsAndRuns(out).layers());
        try (GgufFile gguf = GgufFile.open(out)) {
            assertArrayEquals(new int[] {0, 1, 3}, gguf.metadata().intArray("lathe.pruning.kept_layers"),
                    String.join("\n", s.notes()));
        }
    }

    @Test
    void badParametersAreClearErrors() {
        List<String> messages = new ArrayList<>();
        messages.add(assertThrows(IllegalArgumentException.class, () -> ModelPruner.prune(model, dir.resolve("x.gguf"),
                structured(0, 0, 4), true, QUIET)).getMessage());
        messages.add(assertThrows(IllegalArgumentException.class, () -> ModelPruner.prune(model, dir.resolve("x.gguf"),
                structured(0.9, 0, 0), true, QUIET)).getMessage());
        messages.add(assertThrows(IllegalArgumentException.class, () -> structured(1.0, 0, 0)).getMessage());
        messages.add(assertThrows(IllegalArgumentException.class, () -> ModelPruner.prune(model, dir.resolve("x.gguf"),
                unstructured(PruneMethod.MAGNITUDE, SparsityTarget.pattern(3, 64), PruneOptions.Store.DENSE, 0), true, QUIET)).getMessage());
        messages.add(assertThrows(IllegalArgumentException.class,
                () -> unstructured(PruneMethod.WANDA, SparsityTarget.unstructured(0.5), PruneOptions.Store.SPARSE24, 0)).getMessage());
        messages.add(assertThrows(IllegalArgumentException.class,
                () -> new PruneOptions(PruneMethod.WANDA, SparsityTarget.unstructured(0.5), 0, 0, 0, null, 4, 64,
                        PruneOptions.Store.DENSE, 0)).getMessage());
        messages.forEach(System.out::println);
        assertTrue(messages.get(0).contains("every one of the model's 4 layers"), messages.get(0));
        assertTrue(messages.get(1).contains("remove all 4 KV heads"), messages.get(1));
        assertTrue(messages.get(2).contains("(0, 1)"), messages.get(2));
        assertTrue(messages.get(3).contains("does not divide") && messages.get(3).contains("blk.0"), messages.get(3));
        assertTrue(messages.get(4).contains("2:4"), messages.get(4));
        assertTrue(messages.get(5).contains("--calib"), messages.get(5));
        assertFalse(Files.exists(dir.resolve("x.gguf")));
    }
}
