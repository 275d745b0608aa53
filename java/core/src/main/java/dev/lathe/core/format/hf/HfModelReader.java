package dev.lathe.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lathe.core.format.LlamaTensorShapes;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.TokenizerJsonReader;
import dev.lathe.core.tokenizer.Vocabulary;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;

/**
 * Reads a Hugging Face model directory: {@code config.json}, the weights in {@code model.safetensors}
 * or in the shards that {@code model.safetensors.index.json} lists, and {@code generation_config.json}
 * when present. Tensors are renamed to GGUF names ({@link HfTensorNames}), checked against the config's
 * shapes ({@link LlamaTensorShapes}) and left in the mapped files.
 *
 * <p>A config.json with a {@code quantization_config} ({@link HfQuantization}) may hold packed
 * layers: GPTQ and AWQ ({@code P.qweight / qzeros / scales [/ g_idx]}) and bitsandbytes NF4
 * ({@code P.weight} U8 with its quant state). Each is repacked once, at load, into the Lathe format
 * with the same values ({@link GptqTensors}, {@link AwqTensors}, {@link BnbNf4Tensors}), so the
 * CPU backend computes on the 4-bit data; other layers of such a checkpoint (modules the
 * quantizer skipped, norms, embeddings) are dense as usual.
 */
public final class HfModelReader {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private HfModelReader() {
    }

    public static LoadedModel read(Path directory) {
        if (!Files.isDirectory(directory)) {
            throw new ModelFormatException(directory.toString(), "is not a Hugging Face model directory");
        }
        HfConfig hf = HfConfig.read(directory.resolve("config.json"));
        LlamaConfig config = hf.config();
        Arena arena = Arena.ofShared();
        try {
            List<SafetensorsFile> shards = openShards(directory, arena);
            SequencedMap<String, WeightMatrix> tensors = tensors(directory.toString(), config, hf.quantization(), shards, arena);
            SequencedMap<String, Object> metadata = new LinkedHashMap<>();
            metadata.put("format", "safetensors");
            metadata.put("safetensors.files", shards.size());
            metadata.putAll(hf.metadata());
            metadata.putAll(GenerationConfig.read(directory.resolve("generation_config.json")));
            String format = shards.size() == 1 ? "safetensors" : "safetensors (" + shards.size() + " shards)";
            if (hf.quantization() != null) {
                String method = hf.quantization().method().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ');
                format += ", " + method;
                metadata.put("hf.quantization", method);
            }
            return new LoadedModel(directory.toString(), format, config, tensors, vocabulary(directory), metadata, arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The single weights file, or every shard the index names (each opened once, index order). */
    private static List<SafetensorsFile> openShards(Path directory, Arena arena) {
        Path index = directory.resolve(INDEX_FILE);
        if (!Files.exists(index)) {
            Path single = directory.resolve(SINGLE_FILE);
            if (!Files.exists(single)) {
                throw new ModelFormatException(directory.toString(), "has neither " + SINGLE_FILE + " nor " + INDEX_FILE);
            }
            return List.of(SafetensorsFile.open(single, arena));
        }
        JsonNode weightMap = HfConfig.readJson(index).path("weight_map");
        if (!weightMap.isObject() || weightMap.isEmpty()) {
            throw new ModelFormatException(index.toString(), "has no 'weight_map' object");
        }
        Map<String, SafetensorsFile> byShard = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> entry : weightMap.properties()) {
            String shardName = entry.getValue().asText();
            SafetensorsFile shard = byShard.get(shardName);
            if (shard == null) {
                shard = SafetensorsFile.open(shardPath(index, directory, shardName), arena);
                byShard.put(shardName, shard);
            }
            if (!shard.tensors().containsKey(entry.getKey())) {
                throw new ModelFormatException(index.toString(), "weight_map puts '" + entry.getKey() + "' in "
                        + shardName + ", which has no such tensor");
            }
        }
        return new ArrayList<>(byShard.values());
    }

    private static Path shardPath(Path index, Path directory, String shardName) {
        Path shard = directory.resolve(shardName).normalize();
        // NOTE: a shard name is a plain file name beside the index; anything else could read outside the model.
        if (shardName.isEmpty() || !directory.normalize().equals(shard.getParent())) {
            throw new ModelFormatException(index.toString(), "shard name '" + shardName + "' is not a file in "
                    + directory);
        }
        if (!Files.isRegularFile(shard)) {
            throw new ModelFormatException(index.toString(), "shard '" + shardName + "' listed in weight_map is missing");
        }
        return shard;
    }

    private static SequencedMap<String, WeightMatrix> tensors(String source, LlamaConfig config, HfQuantization quantization,
                                                             List<SafetensorsFile> shards, Arena arena) {
        SequencedMap<String, int[]> required = LlamaTensorShapes.required(config);
        Map<String, SafetensorsFile.Tensor> all = new LinkedHashMap<>();
        Map<String, String> shardOf = new LinkedHashMap<>();
        for (SafetensorsFile shard : shards) {
            for (SafetensorsFile.Tensor tensor : shard.tensors().values()) {
                if (all.putIfAbsent(tensor.name(), tensor) != null) {
                    throw new ModelFormatException(shard.source(), "tensor '" + tensor.name() + "' appears twice");
                }
                shardOf.put(tensor.name(), shard.source());
            }
        }
        Map<String, WeightMatrix> found = new LinkedHashMap<>();
        Set<String> consumed = new HashSet<>();
        readPacked(source, config, quantization, all, required, found, consumed, arena);
        for (SafetensorsFile.Tensor tensor : all.values()) {
            if (consumed.contains(tensor.name())) {
                continue;
            }
            String shard = shardOf.get(tensor.name());
            String name = HfTensorNames.toGguf(tensor.name());
            // NOTE: RoPE frequency buffers are recomputed from rope_theta. Any other unknown tensor (an
            // o_proj or MLP bias, a QK-norm) is part of a computation Lathe would silently leave out.
            if (name == null) {
                if (tensor.name().endsWith("rotary_emb.inv_freq")) {
                    continue;
                }
                String packedPart = PACKED_PARTS.stream().filter(tensor.name()::endsWith).findFirst().orElse(null);
                if (packedPart != null) {
                    throw new ModelFormatException(shard, "tensor '" + tensor.name() + "' is part of a quantized layer, but "
                            + (quantization == null ? "config.json has no quantization_config"
                            : "its layer has no " + (quantization.method() == HfQuantization.Method.BITSANDBYTES_NF4
                            ? "quant_state.bitsandbytes__nf4" : "qweight")));
                }
                throw new ModelFormatException(shard, "tensor '" + tensor.name()
                        + "' is not part of the " + config.architecture() + " layout Lathe runs");
            }
            // NOTE: with tied embeddings some checkpoints still store lm_head (a copy of the embedding);
            // it is dropped so that output.weight is absent exactly when tied, as elsewhere in Lathe.
            if (config.tiedEmbeddings() && name.equals("output.weight")) {
                continue;
            }
            int[] shape = required.get(name);
            if (shape == null) {
                throw new ModelFormatException(shard, "tensor '" + tensor.name() + "' (" + name
                        + ") does not belong to a " + config.architecture() + " with " + config.layers()
                        + " layers" + (config.qkvBias() ? "" : " and no Q/K/V biases"));
            }
            long[] rowsCols = tensor.shape().length == 1 ? new long[]{1, tensor.shape()[0]} : tensor.shape();
            LlamaTensorShapes.check(shard, "'" + tensor.name() + "' (" + name + ")", shape, rowsCols);
            if (found.containsKey(name)) {
                throw new ModelFormatException(shard, "tensor '" + tensor.name() + "' is stored both packed and dense");
            }
            found.put(name, WeightMatrices.of(name, tensor.ggmlType(shard), shape[0], shape[1], tensor.data()));
        }
        SequencedMap<String, WeightMatrix> ordered = new LinkedHashMap<>();
        for (String name : required.keySet()) {
            WeightMatrix matrix = found.get(name);
            if (matrix == null) {
                throw new ModelFormatException(source, "required tensor '" + HfTensorNames.toHf(name) + "' ("
                        + name + ") is in none of the safetensors files");
            }
            ordered.put(name, matrix);
        }
        return ordered;
    }

    /** Name endings of the tensors a packed (GPTQ, AWQ, bitsandbytes) layer is stored as. */
    private static final List<String> PACKED_PARTS = List.of(".qweight", ".qzeros", ".scales", ".g_idx", ".weight.absmax",
            ".weight.quant_map", ".weight.nested_absmax", ".weight.nested_quant_map");

    /**
     * Reads every packed layer (a {@code P.qweight}, or a {@code P.weight.quant_state.bitsandbytes__*})
     * into Lathe's formats, adding it to {@code found} under its GGUF name and its tensors to {@code consumed}.
     */
    private static void readPacked(String source, LlamaConfig config, HfQuantization quantization,
                                   Map<String, SafetensorsFile.Tensor> all, SequencedMap<String, int[]> required,
                                   Map<String, WeightMatrix> found, Set<String> consumed, Arena arena) {
        for (String tensorName : List.copyOf(all.keySet())) {
            String prefix;
            boolean bnb;
            if (tensorName.endsWith(".qweight")) {
                prefix = tensorName.substring(0, tensorName.length() - ".qweight".length());
                bnb = false;
            } else if (tensorName.contains(BnbNf4Tensors.STATE_PREFIX)) {
                prefix = tensorName.substring(0, tensorName.indexOf(BnbNf4Tensors.STATE_PREFIX));
                bnb = true;
            } else {
                continue;
            }
            if (quantization == null || bnb != (quantization.method() == HfQuantization.Method.BITSANDBYTES_NF4)) {
                throw new ModelFormatException(source, "tensor '" + tensorName + "' is a " + (bnb ? "bitsandbytes" : "GPTQ/AWQ")
                        + " packed layer, but config.json's quantization_config " + (quantization == null ? "is absent"
                        : "says " + quantization.method().name().toLowerCase(java.util.Locale.ROOT)));
            }
            String name = HfTensorNames.toGguf(prefix + ".weight");
            int[] shape = name == null ? null : required.get(name);
            if (shape == null || shape[0] == 1) {
                throw new ModelFormatException(source, "tensor '" + tensorName + "': '" + prefix
                        + "' is not a projection of the " + config.architecture() + " layout Lathe runs");
            }
            if (found.containsKey(name)) {
                throw new ModelFormatException(source, "'" + prefix + "' is stored twice");
            }
            WeightMatrix w = switch (quantization.method()) {
                case GPTQ -> GptqTensors.read(all, source, prefix, name, shape[0], shape[1], quantization, arena);
                case AWQ -> AwqTensors.read(all, source, prefix, name, shape[0], shape[1], quantization, arena);
                case BITSANDBYTES_NF4 -> BnbNf4Tensors.read(all, source, prefix, name, shape[0], shape[1], arena);
            };
            found.put(name, w);
            for (String part : bnb ? List.of(".weight", ".weight.absmax", ".weight.quant_map", ".weight.nested_absmax",
                    ".weight.nested_quant_map", BnbNf4Tensors.STATE_PREFIX + "nf4")
                    : List.of(".qweight", ".qzeros", ".scales", ".g_idx")) {
                consumed.add(prefix + part);
            }
        }
    }

    /** tokenizer.json (with tokenizer_config.json when present) beside the weights, or null when there is none. */
    private static Vocabulary vocabulary(Path directory) {
        Path json = directory.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            return null;
        }
        Path config = directory.resolve("tokenizer_config.json");
        return TokenizerJsonReader.read(json, Files.isRegularFile(config) ? config : null);
    }
}
