package dev.lathe.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.hf.HfTensorNames;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Vocabulary;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes a quantized model as a Hugging Face directory other engines load: {@code config.json}
 * (architecture fields and {@code quantization_config}), {@code generation_config.json}, the
 * weights ({@link SafetensorsWriter#writeModel}) under Hugging Face Llama names, and the tokenizer.
 * <ul>
 * <li>{@link Packing#GPTQ}: group-wise INT (2 or 4 bits) linear layers as GPTQ v1 tensors
 *     ({@link GptqPacking}); {@link Packing#AWQ}: INT4 as AWQ GEMM ({@link AwqPacking});
 *     {@link Packing#BITSANDBYTES}: NF4 (with or without double quant) as bitsandbytes
 *     ({@link Nf4Packing}).</li>
 * <li>Everything else is dense: F32 / F16 / BF16 tensors keep their bytes; any other format is
 *     written as its dequantized values, F16 when every value is exactly an f16, else F32 (so a
 *     reader gets exactly the values Lathe computed with). That covers norms, the embedding and
 *     output head (8-bit under the mixed-precision rule), and linear layers the packing cannot hold
 *     (a shape that does not pack into int32 words, or kept at 8 bits): those are named in
 *     {@code quantization_config} so that loaders leave them as plain Linear layers.</li>
 * <li>Tokenizer: the source directory's tokenizer files when the input was a Hugging Face
 *     directory; else a tokenizer.json written from the vocabulary ({@link TokenizerJsonWriter},
 *     SentencePiece-style only); else none, and the caller says to pass {@code -z}.</li>
 * </ul>
 * The model must be in Hugging Face's layout already (half-split RoPE: {@link HfLayout}).
 */
public final class HfExporter {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Default largest shard: transformers' {@code max_shard_size} default is 5 GB. */
    public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;

    private static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model");

    /** The packing of the quantized linear layers. */
    public enum Packing { GPTQ, AWQ, BITSANDBYTES }

    /**
     * What was written.
     *
     * @param packed     Hugging Face names of the linear modules written packed
     * @param dense      Hugging Face names of the linear modules written dense
     * @param tokenizer  how the tokenizer got there: "copied", "written" or "none"
     */
    public record Result(List<Path> files, List<String> packed, List<String> dense, String tokenizer) {
    }

    private HfExporter() {
    }

    /**
     * Writes {@code model} into {@code directory} (which must exist and be empty).
     *
     * @param sourceDirectory the Hugging Face directory the model came from (its config.json and
     *                        tokenizer files are reused), or null
     * @param actOrder        GPTQ: whether act-order was used (config {@code desc_act})
     */
    public static Result write(LoadedModel model, Packing packing, boolean actOrder, Path sourceDirectory, Path directory,
                               long maxShardBytes) {
        LlamaConfig config = model.config();
        if (config.ropeStyle() != RopeStyle.HALF_SPLIT) {
            throw new IllegalArgumentException(model.source() + " rotates interleaved RoPE pairs: move it to the Hugging Face "
                    + "layout (HfLayout.of) before exporting");
        }
        SafetensorsWriter out = new SafetensorsWriter().metadata("format", "pt");
        List<String> packed = new ArrayList<>();
        List<String> dense = new ArrayList<>();
        LatheFormat packedFormat = null;
        boolean scatteredGroups = false;
        for (Map.Entry<String, WeightMatrix> e : model.tensors().entrySet()) {
            String name = e.getKey();
            WeightMatrix w = e.getValue();
            String hfName = HfTensorNames.toHf(name);
            if (hfName.equals(name)) {
                throw new IllegalArgumentException("tensor " + name + " has no Hugging Face Llama name");
            }
            String module = hfName.substring(0, hfName.length() - ".weight".length());
            boolean linear = isLinear(name);
            if (linear && packs(packing, w) && (packedFormat == null || sameGroups(packedFormat, (LatheFormat) w.format()))) {
                packedFormat = packedFormat == null ? (LatheFormat) w.format() : packedFormat;
                scatteredGroups |= ((LatheFormat) w.format()).kind() == LatheFormat.Kind.INT_GROUP_ACT_ORDER;
                switch (packing) {
                    case GPTQ -> GptqPacking.write(w, module, out);
                    case AWQ -> AwqPacking.write(w, module, out);
                    case BITSANDBYTES -> Nf4Packing.write(w, module, out);
                }
                packed.add(module);
                continue;
            }
            if (linear) {
                dense.add(module);
            }
            addDense(out, hfName, w);
        }
        if (packedFormat == null) {
            throw new IllegalArgumentException("no linear layer of " + model.source() + " can be written as " + packing
                    + " (they are " + formats(model) + ")");
        }
        ObjectNode quantization = switch (packing) {
            case GPTQ -> QuantizationConfig.gptq(packedFormat.bits(), packedFormat.groupSize(), !packedFormat.zeroPoint(),
                    actOrder || scatteredGroups, dense.isEmpty() ? null : packed);
            case AWQ -> QuantizationConfig.awq(packedFormat.groupSize(), dense.isEmpty() ? null : dense);
            case BITSANDBYTES -> QuantizationConfig.bitsandbytesNf4(packedFormat.doubleQuant(), dense);
        };
        List<Path> files = new ArrayList<>(out.writeModel(directory, maxShardBytes));
        files.add(writeJson(directory.resolve("config.json"), config(model, sourceDirectory, quantization)));
        files.add(writeJson(directory.resolve("generation_config.json"), generationConfig(model)));
        String tokenizer = "none";
        if (sourceDirectory != null && Files.isRegularFile(sourceDirectory.resolve("tokenizer.json"))) {
            for (String file : TOKENIZER_FILES) {
                if (Files.isRegularFile(sourceDirectory.resolve(file))) {
                    files.add(copy(sourceDirectory.resolve(file), directory.resolve(file)));
                }
            }
            tokenizer = "copied";
        } else if (TokenizerJsonWriter.supports(model.vocabulary())) {
            TokenizerJsonWriter.write(model.vocabulary(), directory);
            files.add(directory.resolve("tokenizer.json"));
            files.add(directory.resolve("tokenizer_config.json"));
            tokenizer = "written";
        }
        return new Result(files, packed, dense, tokenizer);
    }

    /** True for a block's attention and FFN projections: the layers GPTQ / AWQ / bitsandbytes loaders replace. */
    static boolean isLinear(String ggufName) {
        return ggufName.startsWith("blk.") && (ggufName.endsWith("attn_q.weight") || ggufName.endsWith("attn_k.weight")
                || ggufName.endsWith("attn_v.weight") || ggufName.endsWith("attn_output.weight") || ggufName.endsWith("ffn_gate.weight")
                || ggufName.endsWith("ffn_up.weight") || ggufName.endsWith("ffn_down.weight"));
    }

    private static boolean packs(Packing packing, WeightMatrix w) {
        return switch (packing) {
            case GPTQ -> GptqPacking.fits(w);
            case AWQ -> AwqPacking.fits(w);
            case BITSANDBYTES -> Nf4Packing.fits(w);
        };
    }

    /** One quantization_config describes every packed layer: the same bits, group size, zero-point and double-quant choice. */
    private static boolean sameGroups(LatheFormat a, LatheFormat b) {
        return a.bits() == b.bits() && a.groupSize() == b.groupSize() && a.zeroPoint() == b.zeroPoint() && a.doubleQuant() == b.doubleQuant();
    }

    private static String formats(LoadedModel model) {
        return model.tensors().entrySet().stream().filter(e -> isLinear(e.getKey())).map(e -> e.getValue().format().name())
                .distinct().toList().toString();
    }

    private static void addDense(SafetensorsWriter out, String hfName, WeightMatrix w) {
        long[] shape = w.rows() == 1 ? new long[] {w.cols()} : new long[] {w.rows(), w.cols()};
        if (w.format() instanceof GgmlType t && (t == GgmlType.F32 || t == GgmlType.F16 || t == GgmlType.BF16)) {
            out.add(hfName, t.name(), shape, w.data().asSlice(0, w.byteSize()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            return;
        }
        float[] values = new float[Math.multiplyExact(w.rows(), w.cols())];
        for (int r = 0; r < w.rows(); r++) {
            w.dequantizeRow(r, values, r * w.cols());
        }
        boolean half = true;
        for (float v : values) {
            if (Float.float16ToFloat(Float.floatToFloat16(v)) != v) {
                half = false;
                break;
            }
        }
        if (half) {
            out.addFloat16(hfName, shape, values);
        } else {
            out.addFloat32(hfName, shape, values);
        }
    }

    private static ObjectNode config(LoadedModel model, Path sourceDirectory, ObjectNode quantization) {
        ObjectNode c;
        Path sourceConfig = sourceDirectory == null ? null : sourceDirectory.resolve("config.json");
        if (sourceConfig != null && Files.isRegularFile(sourceConfig)) {
            try {
                c = (ObjectNode) JSON.readTree(sourceConfig.toFile());
            } catch (IOException | ClassCastException e) {
                throw new IllegalArgumentException("cannot reuse " + sourceConfig + ": " + e.getMessage(), e);
            }
        } else {
            c = fromConfig(model);
        }
        c.put("torch_dtype", "float16");
        c.set("quantization_config", quantization);
        return c;
    }

    private static ObjectNode fromConfig(LoadedModel model) {
        LlamaConfig k = model.config();
        ObjectNode c = JSON.createObjectNode();
        // GGUF and llama2.c name the architecture "llama" / "qwen2"; HF checkpoints name the class.
        String architecture = switch (k.architecture()) {
            case "llama" -> "LlamaForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            default -> k.architecture();
        };
        c.putArray("architectures").add(architecture);
        c.put("model_type", switch (architecture) {
            case "MistralForCausalLM" -> "mistral";
            case "Qwen2ForCausalLM" -> "qwen2";
            default -> "llama";
        });
        c.put("hidden_size", k.dim());
        c.put("intermediate_size", k.ffnDim());
        c.put("num_hidden_layers", k.layers());
        c.put("num_attention_heads", k.heads());
        c.put("num_key_value_heads", k.kvHeads());
        c.put("head_dim", k.headDim());
        c.put("vocab_size", k.vocabSize());
        c.put("max_position_embeddings", k.contextLength());
        c.put("rms_norm_eps", k.rmsNormEps());
        c.put("rope_theta", k.ropeTheta());
        if (k.ropeScaling() != null) {
            ObjectNode s = c.putObject("rope_scaling");
            s.put("rope_type", "llama3");
            s.put("factor", k.ropeScaling().factor());
            s.put("low_freq_factor", k.ropeScaling().lowFreqFactor());
            s.put("high_freq_factor", k.ropeScaling().highFreqFactor());
            s.put("original_max_position_embeddings", k.ropeScaling().originalContext());
        }
        c.put("hidden_act", "silu");
        c.put("tie_word_embeddings", k.tiedEmbeddings());
        c.put("attention_bias", false);
        Vocabulary v = model.vocabulary();
        if (v != null && v.bosId() >= 0) {
            c.put("bos_token_id", v.bosId());
        }
        if (v != null && v.eosId() >= 0) {
            c.put("eos_token_id", v.eosId());
        }
        return c;
    }

    private static ObjectNode generationConfig(LoadedModel model) {
        ObjectNode g = JSON.createObjectNode();
        for (String field : List.of("bos_token_id", "eos_token_id", "pad_token_id")) {
            Object value = model.metadata().get("generation." + field);
            if (value instanceof Integer id) {
                g.put(field, id);
            } else if (value instanceof List<?> ids) {
                var array = g.putArray(field);
                ids.forEach(id -> array.add((Integer) id));
            }
        }
        Vocabulary v = model.vocabulary();
        if (!g.has("bos_token_id") && v != null && v.bosId() >= 0) {
            g.put("bos_token_id", v.bosId());
        }
        if (!g.has("eos_token_id") && v != null && v.eosId() >= 0) {
            g.put("eos_token_id", v.eosId());
        }
        return g;
    }

    private static Path writeJson(Path file, JsonNode node) {
        try {
            JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), node);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + file, e);
        }
    }

    private static Path copy(Path from, Path to) {
        try {
            return Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("copying " + from, e);
        }
    }
}
