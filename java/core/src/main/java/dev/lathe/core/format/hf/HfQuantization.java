package dev.lathe.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lathe.core.io.ModelFormatException;

import java.util.Locale;

/**
 * The {@code quantization_config} of a Hugging Face config.json, for the checkpoints Lathe reads
 * into its own formats. Anything else is refused by field and value.
 * <ul>
 * <li>{@code gptq} (AutoGPTQ / transformers / optimum, checkpoint format v1): bits 2 or 4, any
 *     {@code group_size} (-1: one group per row), {@code desc_act} with a {@code g_idx}
 *     permutation ({@link GptqTensors}).</li>
 * <li>{@code awq} (AutoAWQ {@code version: gemm}): 4 bits ({@link AwqTensors}).</li>
 * <li>{@code bitsandbytes} 4-bit NF4, with or without double quantization ({@link BnbNf4Tensors}).</li>
 * </ul>
 *
 * @param method    the packing
 * @param bits      bits per level (4 for AWQ and NF4)
 * @param groupSize values per group along K as the config says it (-1: one per row; NF4: unused,
 *                  each tensor's quant state carries its blocksize)
 * @param symmetric GPTQ {@code sym}: zero points fixed at {@code 2^(bits-1)}
 * @param descAct   GPTQ {@code desc_act} (informational: the {@code g_idx} tensors decide the layout)
 */
public record HfQuantization(Method method, int bits, int groupSize, boolean symmetric, boolean descAct) {

    public enum Method { GPTQ, AWQ, BITSANDBYTES_NF4 }

    /** The config's quantization, or null when it has no {@code quantization_config}. */
    static HfQuantization read(String source, JsonNode root) {
        JsonNode qc = root.path("quantization_config");
        if (qc.isMissingNode() || qc.isNull()) {
            return null;
        }
        if (!qc.isObject()) {
            throw new ModelFormatException(source, "quantization_config should be an object, found " + qc);
        }
        String method = text(qc, "quant_method", "");
        return switch (method) {
            case "gptq" -> gptq(source, qc);
            case "awq" -> awq(source, qc);
            case "bitsandbytes" -> bitsandbytes(source, qc);
            default -> throw new ModelFormatException(source, "quantization_config.quant_method '" + method
                    + "' is not supported; Lathe reads gptq, awq and bitsandbytes (nf4)");
        };
    }

    private static HfQuantization gptq(String source, JsonNode qc) {
        int bits = integer(source, qc, "bits", -1);
        if (bits != 2 && bits != 4) {
            throw new ModelFormatException(source, "quantization_config.bits " + bits + " is not supported for gptq: Lathe reads 2 and 4"
                    + (bits == 3 ? " (3-bit GPTQ packs levels across int32 words)" : bits == 8 ? " (its group-wise INT holds up to 4 bits)" : ""));
        }
        String format = text(qc, "checkpoint_format", "gptq");
        if (!format.equals("gptq")) {
            throw new ModelFormatException(source, "quantization_config.checkpoint_format '" + format
                    + "' is not supported; Lathe reads 'gptq' (v1: zero points stored minus one)");
        }
        return new HfQuantization(Method.GPTQ, bits, groupSize(source, qc, "group_size"), qc.path("sym").asBoolean(true),
                qc.path("desc_act").asBoolean(false));
    }

    private static HfQuantization awq(String source, JsonNode qc) {
        int bits = integer(source, qc, qc.has("bits") ? "bits" : "w_bit", -1);
        if (bits != 4) {
            throw new ModelFormatException(source, "quantization_config.bits " + bits + " is not supported for awq: Lathe reads 4");
        }
        String version = text(qc, "version", "gemm");
        if (!version.toLowerCase(Locale.ROOT).equals("gemm")) {
            throw new ModelFormatException(source, "quantization_config.version '" + version
                    + "' is not supported for awq; Lathe reads the 'gemm' packing");
        }
        String backend = text(qc, "backend", "autoawq");
        if (!backend.equals("autoawq")) {
            throw new ModelFormatException(source, "quantization_config.backend '" + backend
                    + "' is not supported for awq; Lathe reads AutoAWQ's packing ('autoawq')");
        }
        if (!qc.path("zero_point").asBoolean(true)) {
            throw new ModelFormatException(source, "quantization_config.zero_point false is not supported for awq: "
                    + "the gemm packing Lathe reads has zero points");
        }
        return new HfQuantization(Method.AWQ, 4, groupSize(source, qc, qc.has("group_size") ? "group_size" : "q_group_size"), false, false);
    }

    private static HfQuantization bitsandbytes(String source, JsonNode qc) {
        if (qc.path("load_in_8bit").asBoolean(false)) {
            throw new ModelFormatException(source, "quantization_config.load_in_8bit true is not supported: Lathe reads "
                    + "bitsandbytes 4-bit NF4, not LLM.int8");
        }
        if (!qc.path("load_in_4bit").asBoolean(false)) {
            throw new ModelFormatException(source, "quantization_config.load_in_4bit is not true: Lathe reads bitsandbytes 4-bit NF4");
        }
        String type = text(qc, "bnb_4bit_quant_type", "fp4");
        if (!type.equals("nf4")) {
            throw new ModelFormatException(source, "quantization_config.bnb_4bit_quant_type '" + type
                    + "' is not supported; Lathe reads nf4");
        }
        String storage = text(qc, "bnb_4bit_quant_storage", "uint8");
        if (!storage.equals("uint8")) {
            throw new ModelFormatException(source, "quantization_config.bnb_4bit_quant_storage '" + storage
                    + "' is not supported; Lathe reads uint8");
        }
        return new HfQuantization(Method.BITSANDBYTES_NF4, 4, -1, true, false);
    }

    private static int groupSize(String source, JsonNode qc, String field) {
        int g = integer(source, qc, field, -1);
        if (g != -1 && g <= 0) {
            throw new ModelFormatException(source, "quantization_config." + field + " " + g + " should be positive or -1");
        }
        return g;
    }

    private static String text(JsonNode qc, String field, String fallback) {
        JsonNode v = qc.path(field);
        return v.isTextual() ? v.asText() : fallback;
    }

    private static int integer(String source, JsonNode qc, String field, int fallback) {
        JsonNode v = qc.get(field);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new ModelFormatException(source, "quantization_config." + field + " should be an integer, found " + v);
        }
        return v.intValue();
    }
}
