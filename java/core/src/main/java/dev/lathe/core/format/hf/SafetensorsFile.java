package dev.lathe.core.format.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.lathe.core.io.MappedFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;

/**
 * One memory-mapped {@code .safetensors} file: an unsigned 64-bit little-endian header length N, N bytes
 * of JSON ({@code name -> {dtype, shape, data_offsets: [begin, end)}} relative to the data that follows,
 * plus an optional {@code __metadata__} string map), then the tensor data. Every entry is checked
 * against the file when it is opened, so a tensor's {@link Tensor#data} is always inside the mapping.
 *
 * @param source   the file, for error messages
 * @param tensors  entries in header order
 * @param metadata the {@code __metadata__} map (empty when absent)
 */
public record SafetensorsFile(String source, SequencedMap<String, Tensor> tensors, Map<String, String> metadata) {

    /** Bound on the JSON header: large checkpoints have headers of a few MB; more is a corrupt or hostile file. */
    public static final long MAX_HEADER_BYTES = 100L << 20;

    /**
     * A tensor as stored.
     *
     * @param name  the checkpoint's name ({@code model.layers.0.self_attn.q_proj.weight})
     * @param dtype the safetensors dtype string ({@code F32}, {@code BF16}, ...)
     * @param shape dimensions, outermost first (HF Linear weights are {@code [out, in]})
     * @param data  the bytes, still mapped
     */
    public record Tensor(String name, String dtype, long[] shape, MemorySegment data) {

        /** The ggml type for this dtype; dtypes Lathe cannot compute with are refused by name. */
        public GgmlType ggmlType(String source) {
            return switch (dtype) {
                case "F32" -> GgmlType.F32;
                case "F16" -> GgmlType.F16;
                case "BF16" -> GgmlType.BF16;
                default -> throw new ModelFormatException(source, "tensor '" + name + "' has dtype " + dtype
                        + "; Lathe reads F32, F16 and BF16 safetensors");
            };
        }

        public String shapeString() {
            return Arrays.toString(shape);
        }
    }

    /** Maps {@code path} into {@code arena} and reads its header. */
    public static SafetensorsFile open(Path path, Arena arena) {
        MappedFile file = MappedFile.map(path, arena);
        String source = file.source();
        long headerLength = file.int64(0, "safetensors header length");
        long limit = Math.min(MAX_HEADER_BYTES, file.size() - 8);
        if (headerLength < 2 || headerLength > limit) {
            throw new ModelFormatException(source, "safetensors header length " + Long.toUnsignedString(headerLength)
                    + " is outside [2, " + limit + "] (the file has " + file.size() + " bytes; headers are capped at "
                    + MAX_HEADER_BYTES + ")");
        }
        byte[] json = file.slice(8, headerLength, "safetensors header").toArray(ValueLayout.JAVA_BYTE);
        JsonNode header;
        try {
            header = HfConfig.JSON.readTree(new String(json, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(source, "safetensors header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (header == null || !header.isObject()) {
            throw new ModelFormatException(source, "safetensors header is not a JSON object");
        }
        long dataStart = 8 + headerLength;
        MemorySegment data = file.bytes().asSlice(dataStart);
        SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : header.properties()) {
            if (field.getKey().equals("__metadata__")) {
                field.getValue().properties().forEach(m -> metadata.put(m.getKey(), m.getValue().asText()));
            } else {
                Tensor tensor = tensor(source, field.getKey(), field.getValue(), data);
                tensors.put(tensor.name(), tensor);
            }
        }
        return new SafetensorsFile(source, Collections.unmodifiableSequencedMap(tensors),
                Collections.unmodifiableMap(metadata));
    }

    private static Tensor tensor(String source, String name, JsonNode entry, MemorySegment data) {
        String where = "tensor '" + name + "'";
        if (!entry.isObject() || !entry.path("dtype").isTextual()) {
            throw new ModelFormatException(source, where + " has no dtype");
        }
        String dtype = entry.get("dtype").asText();
        long[] shape = nonNegativeLongs(source, where + " shape", entry.path("shape"), -1);
        long[] offsets = nonNegativeLongs(source, where + " data_offsets", entry.path("data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end || end > data.byteSize()) {
            throw new ModelFormatException(source, where + " data_offsets [" + begin + ", " + end
                    + ") are outside the " + data.byteSize() + " data bytes after the header");
        }
        int elementBytes = elementBytes(dtype);
        if (elementBytes > 0) {
            long expected;
            try {
                expected = elementBytes;
                for (long dim : shape) {
                    expected = Math.multiplyExact(expected, dim);
                }
            } catch (ArithmeticException e) {
                throw new ModelFormatException(source, where + " shape " + Arrays.toString(shape) + " overflows");
            }
            if (expected != end - begin) {
                throw new ModelFormatException(source, where + " " + dtype + " " + Arrays.toString(shape) + " needs "
                        + expected + " bytes but data_offsets give " + (end - begin));
            }
        }
        return new Tensor(name, dtype, shape, data.asSlice(begin, end - begin));
    }

    /** Bytes per element of a safetensors dtype, or 0 for a name not in the spec (its size is then not checked). */
    private static int elementBytes(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
            default -> 0;
        };
    }

    private static long[] nonNegativeLongs(String source, String what, JsonNode array, int requiredLength) {
        if (!array.isArray() || (requiredLength >= 0 && array.size() != requiredLength)) {
            throw new ModelFormatException(source, what + " should be an array"
                    + (requiredLength >= 0 ? " of " + requiredLength : "") + " integers, found " + array);
        }
        long[] values = new long[array.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = array.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new ModelFormatException(source, what + " should hold non-negative integers, found " + array);
            }
            values[i] = v.longValue();
        }
        return values;
    }
}
