package dev.lathe.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lathe.core.io.ModelFormatException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * The token ids of a Hugging Face {@code generation_config.json} that matter to generation, as metadata:
 * {@code generation.eos_token_id} (an Integer, or a List of them: Llama 3 stops on several) and
 * {@code generation.bos_token_id}. An absent file gives an empty map.
 */
final class GenerationConfig {
    private GenerationConfig() {
    }

    static SequencedMap<String, Object> read(Path file) {
        SequencedMap<String, Object> metadata = new LinkedHashMap<>();
        if (!Files.exists(file)) {
            return metadata;
        }
        JsonNode root = HfConfig.readJson(file);
        for (String field : List.of("bos_token_id", "eos_token_id", "pad_token_id")) {
            JsonNode value = root.path(field);
            if (value.isMissingNode() || value.isNull()) {
                continue;
            }
            metadata.put("generation." + field, tokenIds(file, field, value));
        }
        return metadata;
    }

    private static Object tokenIds(Path file, String field, JsonNode value) {
        if (value.isIntegralNumber() && value.canConvertToInt()) {
            return value.intValue();
        }
        if (value.isArray()) {
            List<Integer> ids = new ArrayList<>();
            for (JsonNode id : value) {
                if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                    throw new ModelFormatException(file.toString(), field + " should hold token ids, found " + value);
                }
                ids.add(id.intValue());
            }
            return List.copyOf(ids);
        }
        throw new ModelFormatException(file.toString(), field + " should be a token id or a list of them, found " + value);
    }
}
