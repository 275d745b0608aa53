package dev.lathe.core.format.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeScaling;
import dev.lathe.core.model.RopeStyle;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;

/**
 * A Hugging Face {@code config.json} for the Llama family, turned into a {@link LlamaConfig}.
 *
 * @param config   validated hyper-parameters (HF checkpoints rotate half-split RoPE pairs)
 * @param metadata the file's top-level scalar fields as {@code config.<key>}, for display
 * @param quantization its {@code quantization_config}, or null for an unquantized checkpoint
 */
public record HfConfig(LlamaConfig config, SequencedMap<String, Object> metadata, HfQuantization quantization) {

    /** Architectures whose weights are the Llama layout Lathe runs. */
    public static final Set<String> ARCHITECTURES = Set.of("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM");

    // NOTE: transformers' defaults for fields a config.json may leave out (LlamaConfig / Qwen2Config).
    private static final double DEFAULT_RMS_NORM_EPS = 1e-6;
    private static final double DEFAULT_ROPE_THETA = 10000;

    static final ObjectMapper JSON = new ObjectMapper();

    /** Reads {@code configJson}; anything missing, malformed or unsupported is a {@link ModelFormatException} naming it. */
    public static HfConfig read(Path configJson) {
        String source = configJson.toString();
        JsonNode root = readJson(configJson);
        if (!root.isObject()) {
            throw new ModelFormatException(source, "expected a JSON object, found " + root.getNodeType());
        }
        String architecture = architecture(source, root);
        String activation = root.path("hidden_act").asText("silu");
        if (!activation.equals("silu")) {
            throw new ModelFormatException(source, "hidden_act '" + activation + "' is not supported; Lathe runs SwiGLU (silu)");
        }

        int dim = requiredInt(source, root, "hidden_size");
        int heads = requiredInt(source, root, "num_attention_heads");
        int kvHeads = optionalInt(source, root, "num_key_value_heads", heads);
        if (heads <= 0) {
            throw new ModelFormatException(source, "num_attention_heads " + heads + " is not positive");
        }
        int headDim = optionalInt(source, root, "head_dim", dim / heads);
        int contextLength = requiredInt(source, root, "max_position_embeddings");
        // NOTE: Lathe has no sliding-window attention. Mistral's window limits how far back a token
        // attends, so within the window the model is exact: cap the context there instead of refusing.
        boolean slidingWindowUsed = root.hasNonNull("sliding_window") && root.path("use_sliding_window").asBoolean(true);
        if (slidingWindowUsed) {
            contextLength = Math.min(contextLength, requiredInt(source, root, "sliding_window"));
        }

        JsonNode rope = root.path("rope_parameters").isObject() ? root.path("rope_parameters") : root;
        double ropeTheta = optionalDouble(source, rope, "rope_theta", DEFAULT_ROPE_THETA);
        RopeScaling scaling = ropeScaling(source, root.path("rope_parameters").isObject() ? rope : root.path("rope_scaling"));

        LlamaConfig config = new LlamaConfig(
                architecture,
                dim,
                requiredInt(source, root, "intermediate_size"),
                requiredInt(source, root, "num_hidden_layers"),
                heads,
                kvHeads,
                headDim,
                requiredInt(source, root, "vocab_size"),
                contextLength,
                (float) optionalDouble(source, root, "rms_norm_eps", DEFAULT_RMS_NORM_EPS),
                (float) ropeTheta,
                RopeStyle.HALF_SPLIT,
                scaling,
                architecture.equals("Qwen2ForCausalLM"),
                root.path("tie_word_embeddings").asBoolean(false)).validate(source);
        if (!root.hasNonNull("head_dim") && dim % heads != 0) {
            throw new ModelFormatException(source, "hidden_size " + dim + " is not a multiple of num_attention_heads "
                    + heads + " and no head_dim is given");
        }
        return new HfConfig(config, scalars(root), HfQuantization.read(source, root));
    }

    static JsonNode readJson(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            JsonNode root = JSON.readTree(in);
            return root == null ? JSON.missingNode() : root;
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file.toString(), "file not found", e);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file.toString(), "is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new ModelFormatException(file.toString(), "cannot be read: " + e.getMessage(), e);
        }
    }

    private static String architecture(String source, JsonNode root) {
        JsonNode list = root.path("architectures");
        if (!list.isArray() || list.isEmpty() || !list.get(0).isTextual()) {
            throw new ModelFormatException(source, "'architectures' is missing; expected one of " + ARCHITECTURES);
        }
        String name = list.get(0).asText();
        if (!ARCHITECTURES.contains(name)) {
            throw new ModelFormatException(source, "architecture '" + name + "' is not supported; Lathe reads "
                    + ARCHITECTURES);
        }
        return name;
    }

    /** Llama 3.1 scaling, null for none; any other scaling type is refused by name. */
    private static RopeScaling ropeScaling(String source, JsonNode node) {
        if (node.isMissingNode() || node.isNull()) {
            return null;
        }
        String type = node.path("rope_type").asText(node.path("type").asText("default"));
        return switch (type) {
            case "default" -> null;
            case "llama3" -> new RopeScaling(
                    (float) requiredDouble(source, node, "factor"),
                    (float) requiredDouble(source, node, "low_freq_factor"),
                    (float) requiredDouble(source, node, "high_freq_factor"),
                    requiredInt(source, node, "original_max_position_embeddings"));
            default -> throw new ModelFormatException(source, "rope scaling type '" + type
                    + "' is not supported; Lathe implements 'llama3'");
        };
    }

    private static int requiredInt(String source, JsonNode node, String field) {
        if (!node.hasNonNull(field)) {
            throw new ModelFormatException(source, "required field '" + field + "' is missing");
        }
        return optionalInt(source, node, field, 0);
    }

    private static int optionalInt(String source, JsonNode node, String field, int fallback) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.isIntegralNumber() || !value.canConvertToInt()) {
            throw new ModelFormatException(source, "field '" + field + "' should be a 32-bit integer, found " + value);
        }
        return value.intValue();
    }

    private static double requiredDouble(String source, JsonNode node, String field) {
        if (!node.hasNonNull(field)) {
            throw new ModelFormatException(source, "required field '" + field + "' is missing");
        }
        return optionalDouble(source, node, field, 0);
    }

    private static double optionalDouble(String source, JsonNode node, String field, double fallback) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.isNumber()) {
            throw new ModelFormatException(source, "field '" + field + "' should be a number, found " + value);
        }
        return value.doubleValue();
    }

    private static SequencedMap<String, Object> scalars(JsonNode root) {
        SequencedMap<String, Object> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            JsonNode value = field.getValue();
            if (value.isValueNode() && !value.isNull()) {
                metadata.put("config." + field.getKey(), value.isNumber() ? value.numberValue() : value.asText());
            } else if (value.isArray() && field.getKey().equals("architectures")) {
                metadata.put("config.architectures", value.toString());
            }
        }
        return metadata;
    }
}
