package dev.lathe.core.format.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes small Hugging Face model directories (config.json, safetensors, index) following the safetensors spec. */
final class SafetensorsTestFiles {
    static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsTestFiles() {
    }

    /** A tensor to write: its dtype and shape, and f32 values encoded into that dtype. */
    record Tensor(String dtype, long[] shape, float[] values) {
    }

    /** The header JSON and data for {@code tensors}; each tensor's bytes follow the previous one. */
    static Path write(Path file, Map<String, Tensor> tensors) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            byte[] bytes = encode(e.getValue());
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", e.getValue().dtype());
            ArrayNode shape = entry.putArray("shape");
            for (long d : e.getValue().shape()) {
                shape.add(d);
            }
            entry.putArray("data_offsets").add(data.size()).add(data.size() + bytes.length);
            data.writeBytes(bytes);
        }
        return writeRaw(file, JSON.writeValueAsString(header), data.toByteArray());
    }

    /** A safetensors file with this exact header text, padded with spaces to 8 bytes as the spec's writer does. */
    static Path writeRaw(Path file, String headerJson, byte[] data) throws IOException {
        byte[] json = headerJson.getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer out = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded).put(json);
        while (out.position() < 8 + padded) {
            out.put((byte) ' ');
        }
        out.put(data);
        Files.write(file, out.array());
        return file;
    }

    static byte[] encode(Tensor t) {
        int width = switch (t.dtype()) {
            case "F32" -> 4;
            case "F16", "BF16" -> 2;
            default -> 1;
        };
        ByteBuffer b = ByteBuffer.allocate(t.values().length * width).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : t.values()) {
            switch (t.dtype()) {
                case "F32" -> b.putFloat(v);
                case "F16" -> b.putShort(Float.floatToFloat16(v));
                case "BF16" -> b.putShort((short) (Float.floatToRawIntBits(v) >>> 16)); // exact for the test's values
                default -> b.put((byte) v);
            }
        }
        return b.array();
    }

    /** A tiny Llama config.json; {@code overrides} replace or add top-level fields. */
    static Path writeConfig(Path dir, String architecture, Map<String, Object> overrides) throws IOException {
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("architectures", List.of(architecture));
        config.put("hidden_size", 8);
        config.put("intermediate_size", 12);
        config.put("num_hidden_layers", 2);
        config.put("num_attention_heads", 2);
        config.put("num_key_value_heads", 1);
        config.put("vocab_size", 10);
        config.put("max_position_embeddings", 32);
        config.put("rms_norm_eps", 1e-5);
        config.put("rope_theta", 500000.0);
        config.put("hidden_act", "silu");
        config.put("tie_word_embeddings", false);
        config.put("torch_dtype", "bfloat16");
        config.putAll(overrides);
        config.values().removeIf(java.util.Objects::isNull);
        Path file = dir.resolve("config.json");
        JSON.writeValue(file.toFile(), config);
        return file;
    }
}
