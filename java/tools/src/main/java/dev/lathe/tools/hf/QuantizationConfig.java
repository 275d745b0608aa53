package dev.lathe.tools.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * The {@code quantization_config} object of a Hugging Face config.json for the packings written
 * here, with the fields transformers' GPTQConfig / AwqConfig / BitsAndBytesConfig and AutoGPTQ /
 * AutoAWQ read. Linear layers left dense (their shape does not pack, or the mixed-precision rule
 * kept them at 8 bits) are named so that loaders leave them as plain Linear layers.
 */
public final class QuantizationConfig {
    private static final ObjectMapper JSON = new ObjectMapper();

    private QuantizationConfig() {
    }

    /**
     * transformers / AutoGPTQ / optimum, checkpoint format v1. {@code desc_act} says whether act-order
     * was used; Lathe's own act-order keeps static groups ({@code static_groups: true}, g_idx
     * {@code k / g}), a checkpoint read with a scattered g_idx is written back with it.
     *
     * @param quantized full names of the packed linear modules, or null when every linear is packed
     *                  (optimum's {@code modules_in_block_to_quantize} matches names by suffix)
     */
    public static ObjectNode gptq(int bits, int groupSize, boolean symmetric, boolean descAct, List<String> quantized) {
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", "gptq");
        c.put("bits", bits);
        c.put("group_size", groupSize);
        c.put("desc_act", descAct);
        c.put("static_groups", descAct);
        c.put("sym", symmetric);
        c.put("true_sequential", true);
        c.put("damp_percent", 0.01);
        c.put("checkpoint_format", "gptq");
        c.put("model_file_base_name", "model");
        if (quantized != null) {
            ArrayNode block = c.putArray("modules_in_block_to_quantize").addArray();
            quantized.forEach(block::add);
        }
        return c;
    }

    /** AutoAWQ GEMM (transformers AwqConfig keys, plus AutoAWQ's w_bit / q_group_size). */
    public static ObjectNode awq(int groupSize, List<String> notConverted) {
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", "awq");
        c.put("bits", 4);
        c.put("w_bit", 4);
        c.put("group_size", groupSize);
        c.put("q_group_size", groupSize);
        c.put("zero_point", true);
        c.put("version", "gemm");
        if (notConverted != null) {
            ArrayNode list = c.putArray("modules_to_not_convert");
            notConverted.forEach(list::add);
        }
        return c;
    }

    /** bitsandbytes 4-bit NF4; {@code skipped}: modules left dense (lm_head always is). */
    public static ObjectNode bitsandbytesNf4(boolean doubleQuant, List<String> skipped) {
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", "bitsandbytes");
        c.put("load_in_4bit", true);
        c.put("load_in_8bit", false);
        c.put("bnb_4bit_quant_type", "nf4");
        c.put("bnb_4bit_use_double_quant", doubleQuant);
        c.put("bnb_4bit_compute_dtype", "float16");
        c.put("bnb_4bit_quant_storage", "uint8");
        c.put("llm_int8_threshold", 6.0);
        c.put("llm_int8_has_fp16_weight", false);
        ArrayNode list = c.putArray("llm_int8_skip_modules");
        list.add("lm_head");
        if (skipped != null) {
            skipped.forEach(list::add);
        }
        return c;
    }
}
