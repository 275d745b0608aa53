package dev.lathe.core.format.hf;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.hf.SafetensorsTestFiles.Tensor;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A tiny model (dim 8, ffn 12, 2 layers, 2 heads of 4, 1 KV head, vocab 10) written by the test. */
class HfModelReaderTest {
    @TempDir
    Path dir;

    /**
     * The HF tensors of the tiny model. Tensor number t holds t + (i % 8) / 8, exact in F16 and BF16,
     * so every tensor can be recognised by its values. {@code dtypes} are used in turn.
     */
    static LinkedHashMap<String, Tensor> tinyModel(boolean biases, boolean lmHead, String... dtypes) {
        LinkedHashMap<String, Tensor> t = new LinkedHashMap<>();
        add(t, dtypes, "model.embed_tokens.weight", 10, 8);
        for (int l = 0; l < 2; l++) {
            String p = "model.layers." + l + ".";
            add(t, dtypes, p + "input_layernorm.weight", 8);
            add(t, dtypes, p + "self_attn.q_proj.weight", 8, 8);
            add(t, dtypes, p + "self_attn.k_proj.weight", 4, 8);
            add(t, dtypes, p + "self_attn.v_proj.weight", 4, 8);
            if (biases) {
                add(t, dtypes, p + "self_attn.q_proj.bias", 8);
                add(t, dtypes, p + "self_attn.k_proj.bias", 4);
                add(t, dtypes, p + "self_attn.v_proj.bias", 4);
            }
            add(t, dtypes, p + "self_attn.o_proj.weight", 8, 8);
            add(t, dtypes, p + "post_attention_layernorm.weight", 8);
            add(t, dtypes, p + "mlp.gate_proj.weight", 12, 8);
            add(t, dtypes, p + "mlp.up_proj.weight", 12, 8);
            add(t, dtypes, p + "mlp.down_proj.weight", 8, 12);
        }
        add(t, dtypes, "model.norm.weight", 8);
        if (lmHead) {
            add(t, dtypes, "lm_head.weight", 10, 8);
        }
        return t;
    }

    private static void add(Map<String, Tensor> t, String[] dtypes, String name, long... shape) {
        int n = (int) (shape.length == 1 ? shape[0] : shape[0] * shape[1]);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = t.size() + (i % 8) / 8f;
        }
        t.put(name, new Tensor(dtypes[t.size() % dtypes.length], shape, v));
    }

    /** Every GGUF tensor holds exactly the values written under its HF name. */
    static void assertSameValues(LoadedModel model, Map<String, Tensor> written) {
        for (Map.Entry<String, Tensor> e : written.entrySet()) {
            String gguf = HfTensorNames.toGguf(e.getKey());
            WeightMatrix w = model.tensor(gguf);
            Tensor t = e.getValue();
            assertEquals(t.dtype(), w.type().name(), gguf);
            float[] all = new float[w.rows() * w.cols()];
            for (int r = 0; r < w.rows(); r++) {
                w.dequantizeRow(r, all, r * w.cols());
            }
            assertEquals(java.util.Arrays.toString(t.values()), java.util.Arrays.toString(all), gguf);
        }
    }

    @Test
    void singleF32FileLoadsWithGgufNamesAndShapes() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "F32");
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        try (LoadedModel model = HfModelReader.read(dir)) {
            LlamaConfig c = model.config();
            assertEquals("LlamaForCausalLM", c.architecture());
            assertEquals(List.of(8, 12, 2, 2, 1, 4, 10, 32),
                    List.of(c.dim(), c.ffnDim(), c.layers(), c.heads(), c.kvHeads(), c.headDim(), c.vocabSize(), c.contextLength()));
            assertEquals(RopeStyle.HALF_SPLIT, c.ropeStyle());
            assertEquals(500000f, c.ropeTheta());
            assertEquals(1e-5f, c.rmsNormEps());
            assertFalse(c.qkvBias());
            assertFalse(c.tiedEmbeddings());
            assertNull(c.ropeScaling());
            assertEquals("safetensors", model.format());
            assertEquals(written.size(), model.tensors().size());
            assertEquals("token_embd.weight", model.tensors().firstEntry().getKey());
            assertEquals("output.weight", model.tensors().lastEntry().getKey());
            WeightMatrix down = model.tensor("blk.1.ffn_down.weight");
            assertEquals(List.of(8, 12), List.of(down.rows(), down.cols()));
            WeightMatrix norm = model.tensor("blk.0.attn_norm.weight");
            assertEquals(List.of(1, 8), List.of(norm.rows(), norm.cols()));
            assertSameValues(model, written);
            assertEquals("bfloat16", model.metadata().get("config.torch_dtype"));
            assertNull(model.vocabulary());
        }
    }

    @Test
    void f16AndBf16TensorsKeepTheirType() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "MistralForCausalLM", Map.of("sliding_window", 16));
        var written = tinyModel(false, true, "F16", "BF16", "F32");
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        try (LoadedModel model = HfModelReader.read(dir)) {
            assertEquals(16, model.config().contextLength(), "context capped at the sliding window");
            assertSameValues(model, written);
        }
    }

    @Test
    void shardedCheckpointWithIndexAndGenerationConfig() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "BF16");
        var first = new LinkedHashMap<String, Tensor>();
        var second = new LinkedHashMap<String, Tensor>();
        var weightMap = new LinkedHashMap<String, String>();
        for (var e : written.entrySet()) {
            boolean early = first.size() < written.size() / 2;
            (early ? first : second).put(e.getKey(), e.getValue());
            weightMap.put(e.getKey(), early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        }
        SafetensorsTestFiles.write(dir.resolve("model-00001-of-00002.safetensors"), first);
        SafetensorsTestFiles.write(dir.resolve("model-00002-of-00002.safetensors"), second);
        writeIndex(weightMap);
        Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": [2, 7]}");
        try (LoadedModel model = HfModelReader.read(dir)) {
            assertEquals("safetensors (2 shards)", model.format());
            assertSameValues(model, written);
            assertEquals(1, model.metadata().get("generation.bos_token_id"));
            assertEquals(List.of(2, 7), model.metadata().get("generation.eos_token_id"));
        }
    }

    @Test
    void qwen2BiasesAreOneRowMatrices() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "Qwen2ForCausalLM", Map.of("tie_word_embeddings", true));
        var written = tinyModel(true, false, "F32");
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        try (LoadedModel model = HfModelReader.read(dir)) {
            assertTrue(model.config().qkvBias());
            assertTrue(model.config().tiedEmbeddings());
            assertNull(model.optionalTensor("output.weight"));
            WeightMatrix kBias = model.tensor("blk.1.attn_k.bias");
            assertEquals(List.of(1, 4), List.of(kBias.rows(), kBias.cols()));
            assertSameValues(model, written);
        }
        written.remove("model.layers.1.self_attn.v_proj.bias");
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        assertProblem(() -> HfModelReader.read(dir), dir, "'model.layers.1.self_attn.v_proj.bias' (blk.1.attn_v.bias)");
    }

    @Test
    void tiedEmbeddingsDropAStoredLmHead() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of("tie_word_embeddings", true));
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), tinyModel(false, true, "F32"));
        try (LoadedModel model = HfModelReader.read(dir)) {
            assertNull(model.optionalTensor("output.weight"));
        }
    }

    @Test
    void untiedModelWithoutLmHeadIsMissingATensor() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), tinyModel(false, false, "F32"));
        assertProblem(() -> HfModelReader.read(dir), dir, "'lm_head.weight' (output.weight) is in none");
    }

    @Test
    void shapeMismatchNamesTheTensorAndBothShapes() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "F32");
        written.put("model.layers.1.self_attn.k_proj.weight", new Tensor("F32", new long[]{8, 8}, new float[64]));
        Path file = SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        assertProblem(() -> HfModelReader.read(dir), file,
                "'model.layers.1.self_attn.k_proj.weight' (blk.1.attn_k.weight) should have shape [4, 8] but has [8, 8]");
    }

    @Test
    void unsupportedDtypeIsNamed() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "F32");
        written.put("model.norm.weight", new Tensor("I8", new long[]{8}, new float[8]));
        Path file = SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        assertProblem(() -> HfModelReader.read(dir), file, "'model.norm.weight' has dtype I8");
    }

    @Test
    void ropeBuffersAreIgnoredButUnknownTensorsRefused() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "F32");
        written.put("model.layers.0.self_attn.rotary_emb.inv_freq", new Tensor("F32", new long[]{2}, new float[2]));
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        try (LoadedModel model = HfModelReader.read(dir)) {
            assertEquals(written.size() - 1, model.tensors().size());
        }
        written.put("model.layers.1.self_attn.o_proj.bias", new Tensor("F32", new long[]{8}, new float[8]));
        Path file = SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        assertProblem(() -> HfModelReader.read(dir), file,
                "tensor 'model.layers.1.self_attn.o_proj.bias' is not part of the LlamaForCausalLM layout");
    }

    @Test
    void tensorOfALayerBeyondTheConfigIsRefused() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "F32");
        written.put("model.layers.2.input_layernorm.weight", new Tensor("F32", new long[]{8}, new float[8]));
        Path file = SafetensorsTestFiles.write(dir.resolve("model.safetensors"), written);
        assertProblem(() -> HfModelReader.read(dir), file, "'model.layers.2.input_layernorm.weight' (blk.2.attn_norm.weight) does not belong");
    }

    @Test
    void missingShardIsNamed() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        var written = tinyModel(false, true, "F32");
        SafetensorsTestFiles.write(dir.resolve("model-00001-of-00002.safetensors"), written);
        var weightMap = new LinkedHashMap<String, String>();
        written.keySet().forEach(k -> weightMap.put(k, "model-00001-of-00002.safetensors"));
        weightMap.put("lm_head.weight", "model-00002-of-00002.safetensors");
        Path index = writeIndex(weightMap);
        assertProblem(() -> HfModelReader.read(dir), index, "shard 'model-00002-of-00002.safetensors' listed in weight_map is missing");
    }

    @Test
    void shardNamesCannotLeaveTheDirectory() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        Path index = writeIndex(Map.of("lm_head.weight", "../elsewhere.safetensors"));
        assertProblem(() -> HfModelReader.read(dir), index, "'../elsewhere.safetensors' is not a file in");
    }

    @Test
    void indexEntryAbsentFromItsShard() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        SafetensorsTestFiles.write(dir.resolve("a.safetensors"), tinyModel(false, true, "F32"));
        Path index = writeIndex(Map.of("model.extra.weight", "a.safetensors"));
        assertProblem(() -> HfModelReader.read(dir), index, "puts 'model.extra.weight' in a.safetensors, which has no such tensor");
    }

    @Test
    void noWeightsAtAll() throws Exception {
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of());
        assertProblem(() -> HfModelReader.read(dir), dir, "has neither model.safetensors nor model.safetensors.index.json");
    }

    @Test
    void missingConfigIsNamed() {
        assertProblem(() -> HfModelReader.read(dir), dir.resolve("config.json"), "file not found");
    }

    private Path writeIndex(Map<String, String> weightMap) throws Exception {
        Path index = dir.resolve("model.safetensors.index.json");
        SafetensorsTestFiles.JSON.writeValue(index.toFile(), Map.of("metadata", Map.of("total_size", 0), "weight_map", weightMap));
        return index;
    }

    static void assertProblem(org.junit.jupiter.api.function.Executable load, Path file, String fragment) {
        var e = assertThrows(ModelFormatException.class, load);
        assertTrue(e.getMessage().contains(file.toString()), "names " + file + ": " + e.getMessage());
        assertTrue(e.getMessage().contains(fragment), "says '" + fragment + "': " + e.getMessage());
    }
}
