package dev.lathe.core.format.hf;

import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeScaling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static dev.lathe.core.format.hf.HfModelReaderTest.assertProblem;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class HfConfigTest {
    @TempDir
    Path dir;

    @Test
    void llama31RopeScalingAndExplicitHeadDim() throws Exception {
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("head_dim", 8);
        overrides.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0,
                "high_freq_factor", 4.0, "original_max_position_embeddings", 8192));
        LlamaConfig c = HfConfig.read(SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", overrides)).config();
        assertEquals(8, c.headDim());
        assertEquals(16, c.qDim());
        assertEquals(new RopeScaling(8f, 1f, 4f, 8192), c.ropeScaling());
    }

    @Test
    void defaultsForOptionalFields() throws Exception {
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("num_key_value_heads", null);
        overrides.put("rms_norm_eps", null);
        overrides.put("rope_theta", null);
        overrides.put("tie_word_embeddings", null);
        overrides.put("rope_scaling", null);
        LlamaConfig c = HfConfig.read(SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", overrides)).config();
        assertEquals(2, c.kvHeads());
        assertEquals(1e-6f, c.rmsNormEps());
        assertEquals(10000f, c.ropeTheta());
        assertEquals(false, c.tiedEmbeddings());
        assertNull(c.ropeScaling());
    }

    @Test
    void ropeParametersOfNewerTransformers() throws Exception {
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("rope_theta", null);
        overrides.put("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1000000.0));
        LlamaConfig c = HfConfig.read(SafetensorsTestFiles.writeConfig(dir, "Qwen2ForCausalLM", overrides)).config();
        assertEquals(1e6f, c.ropeTheta());
        assertNull(c.ropeScaling());
    }

    @Test
    void slidingWindowCapsTheContextOnlyWhenUsed() throws Exception {
        Path qwen = SafetensorsTestFiles.writeConfig(dir, "Qwen2ForCausalLM",
                Map.of("sliding_window", 8, "use_sliding_window", false));
        assertEquals(32, HfConfig.read(qwen).config().contextLength());
        Path mistral = SafetensorsTestFiles.writeConfig(dir, "MistralForCausalLM", Map.of("sliding_window", 8));
        assertEquals(8, HfConfig.read(mistral).config().contextLength());
    }

    @Test
    void unknownArchitectureIsRefusedByName() throws Exception {
        Path file = SafetensorsTestFiles.writeConfig(dir, "GPT2LMHeadModel", Map.of());
        assertProblem(() -> HfConfig.read(file), file, "architecture 'GPT2LMHeadModel' is not supported");
    }

    @Test
    void unsupportedRopeScalingIsRefusedByName() throws Exception {
        Path file = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM",
                Map.of("rope_scaling", Map.of("type", "yarn", "factor", 4.0)));
        assertProblem(() -> HfConfig.read(file), file, "rope scaling type 'yarn' is not supported");
    }

    @Test
    void hostileAndMalformedFields() throws Exception {
        Path huge = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of("hidden_size", Integer.MAX_VALUE));
        assertProblem(() -> HfConfig.read(huge), huge, "embedding length 2147483647");
        Path tooBig = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of("vocab_size", 1L << 40));
        assertProblem(() -> HfConfig.read(tooBig), tooBig, "field 'vocab_size' should be a 32-bit integer");
        Path negative = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of("num_hidden_layers", -3));
        assertProblem(() -> HfConfig.read(negative), negative, "block count -3");
        Path text = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of("intermediate_size", "big"));
        assertProblem(() -> HfConfig.read(text), text, "field 'intermediate_size' should be a 32-bit integer, found \"big\"");
        Map<String, Object> missing = new HashMap<>();
        missing.put("hidden_size", null);
        Path absent = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", missing);
        assertProblem(() -> HfConfig.read(absent), absent, "required field 'hidden_size' is missing");
        Path gelu = SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of("hidden_act", "gelu"));
        assertProblem(() -> HfConfig.read(gelu), gelu, "hidden_act 'gelu' is not supported");
    }

    @Test
    void notJson() throws Exception {
        Path file = Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": ");
        assertProblem(() -> HfConfig.read(file), file, "is not valid JSON");
        Files.writeString(file, "[1, 2]");
        assertProblem(() -> HfConfig.read(file), file, "expected a JSON object, found ARRAY");
    }
}
