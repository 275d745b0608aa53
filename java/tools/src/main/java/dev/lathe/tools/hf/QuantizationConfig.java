package dev.lathe.tools.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** The {@code quantization_config} object of a Hugging Face config.json for the packings written here. */
public final class QuantizationConfig {
    private static final ObjectMapper JSON = new ObjectMapper();

    private QuantizationConfig() {
    }

    /** transformers / AutoGPTQ: contiguous groups (desc_act false: our act-order uses static groups, no g_idx permutation). */
    public static ObjectNode gptq(int bits, int groupSize, boolean symmetric) {
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", "gptq");
        c.put("bits", bits);
        c.put("group_size", groupSize);
        c.put("desc_act", false);
        c.put("sym", symmetric);
        c.put("checkpoint_format", "gptq");
        return c;
    }

    /** AutoAWQ GEMM. */
    public static ObjectNode awq(int groupSize) {
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", "awq");
        c.put("bits", 4);
        c.put("group_size", groupSize);
        c.put("zero_point", true);
        c.put("version", "gemm");
        return c;
    }

    /** bitsandbytes 4-bit NF4, no double quantization. */
    public static ObjectNode bitsandbytesNf4() {
        ObjectNode c = JSON.createObjectNode();
        c.put("quant_method", "bitsandbytes");
        c.put("load_in_4bit", true);
        c.put("bnb_4bit_quant_type", "nf4");
        c.put("bnb_4bit_use_double_quant", false);
        c.put("bnb_4bit_compute_dtype", "float16");
        return c;
    }
}
