package dev.lathe.core.format.hf;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.format.hf.SafetensorsTestFiles.Tensor;
import dev.lathe.core.format.llama2c.Llama2cCheckpointReader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tensor.WeightMatrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * stories260K rewritten as a Hugging Face checkpoint, the way transformers' Llama converter does it
 * (Q and K rows permuted from interleaved to half-split RoPE pairs), must generate llama2.c's
 * reference greedy tokens: checks the tensor names, the [out, in] orientation and the RoPE style together.
 */
class HfStories260KRoundTripTest {
    private static final String DIR = "models/stories260K/";
    private static final int TOKENS = 64;

    @TempDir
    Path hfDir;

    @Test
    void hfCheckpointOfStories260KGeneratesTheReferenceTokens() throws Exception {
        try (LoadedModel llama2c = Llama2cCheckpointReader.read(SharedData.require(DIR + "stories260K.bin"))) {
            writeHfCheckpoint(llama2c, hfDir);
        }
        String idsText = Files.readString(SharedData.require(DIR + "reference/stories260K_greedy_n256.ids.txt")).trim();
        int[] reference = Arrays.stream(idsText.split("\\s+")).mapToInt(Integer::parseInt).limit(TOKENS).toArray();
        try (LoadedModel hf = ModelLoader.load(hfDir); CpuBackend backend = new CpuBackend(2)) {
            assertEquals(RopeStyle.HALF_SPLIT, hf.config().ropeStyle());
            var tokenizer = TokenizerLoader.forModel(hf, SharedData.require(DIR + "tok512.bin"));
            GenerationResult result = new Generator(new LlamaModel(hf, backend), tokenizer)
                    .generate("", SamplingParams.greedy().withMaxNewTokens(TOKENS), null);
            assertArrayEquals(reference, result.tokens());
        }
    }

    private static void writeHfCheckpoint(LoadedModel model, Path dir) throws Exception {
        LlamaConfig c = model.config();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (WeightMatrix w : model.tensors().values()) {
            float[] values = new float[w.rows() * w.cols()];
            for (int r = 0; r < w.rows(); r++) {
                w.dequantizeRow(r, values, r * w.cols());
            }
            if (w.name().endsWith("attn_q.weight")) {
                values = interleavedToHalfSplit(values, c.heads(), c.headDim(), w.cols());
            } else if (w.name().endsWith("attn_k.weight")) {
                values = interleavedToHalfSplit(values, c.kvHeads(), c.headDim(), w.cols());
            }
            long[] shape = w.rows() == 1 ? new long[]{w.cols()} : new long[]{w.rows(), w.cols()};
            tensors.put(HfTensorNames.toHf(w.name()), new Tensor("F32", shape, values));
        }
        SafetensorsTestFiles.write(dir.resolve("model.safetensors"), tensors);
        SafetensorsTestFiles.writeConfig(dir, "LlamaForCausalLM", Map.of(
                "hidden_size", c.dim(), "intermediate_size", c.ffnDim(), "num_hidden_layers", c.layers(),
                "num_attention_heads", c.heads(), "num_key_value_heads", c.kvHeads(), "vocab_size", c.vocabSize(),
                "max_position_embeddings", c.contextLength(), "rope_theta", 10000.0, "tie_word_embeddings", true));
    }

    /** Row {@code 2p + c} of each head moves to row {@code c * headDim/2 + p} (transformers' permute). */
    private static float[] interleavedToHalfSplit(float[] rows, int heads, int headDim, int cols) {
        float[] out = new float[rows.length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            for (int p = 0; p < half; p++) {
                for (int pair = 0; pair < 2; pair++) {
                    int from = h * headDim + 2 * p + pair;
                    int to = h * headDim + pair * half + p;
                    System.arraycopy(rows, from * cols, out, to * cols, cols);
                }
            }
        }
        return out;
    }
}
