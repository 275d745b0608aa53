package dev.lathe.core.format.hf;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face Llama-family tensor names to GGUF names (the mapping llama.cpp's converter applies).
 * Q/K weights keep their order: HF checkpoints use half-split RoPE, and Lathe applies that style to
 * them instead of permuting rows the way GGUF conversion does.
 */
public final class HfTensorNames {
    private static final Pattern GGUF_LAYER = Pattern.compile("blk\\.(\\d+)\\.(.+)");
    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d{1,4})\\.(.+)");

    private static final Map<String, String> GLOBAL = Map.of(
            "model.embed_tokens.weight", "token_embd.weight",
            "model.norm.weight", "output_norm.weight",
            "lm_head.weight", "output.weight");

    private static final Map<String, String> PER_LAYER = Map.ofEntries(
            Map.entry("input_layernorm.weight", "attn_norm.weight"),
            Map.entry("self_attn.q_proj.weight", "attn_q.weight"),
            Map.entry("self_attn.k_proj.weight", "attn_k.weight"),
            Map.entry("self_attn.v_proj.weight", "attn_v.weight"),
            Map.entry("self_attn.q_proj.bias", "attn_q.bias"),
            Map.entry("self_attn.k_proj.bias", "attn_k.bias"),
            Map.entry("self_attn.v_proj.bias", "attn_v.bias"),
            Map.entry("self_attn.o_proj.weight", "attn_output.weight"),
            Map.entry("post_attention_layernorm.weight", "ffn_norm.weight"),
            Map.entry("mlp.gate_proj.weight", "ffn_gate.weight"),
            Map.entry("mlp.up_proj.weight", "ffn_up.weight"),
            Map.entry("mlp.down_proj.weight", "ffn_down.weight"));

    private HfTensorNames() {
    }

    /** The GGUF name for {@code hfName}, or null when it is not one of the Llama-layout tensors above. */
    public static String toGguf(String hfName) {
        String global = GLOBAL.get(hfName);
        if (global != null) {
            return global;
        }
        Matcher m = LAYER.matcher(hfName);
        if (m.matches()) {
            String suffix = PER_LAYER.get(m.group(2));
            return suffix == null ? null : "blk." + Integer.parseInt(m.group(1)) + "." + suffix;
        }
        return null;
    }

    /** The Hugging Face name for a GGUF name this class maps, for error messages; other names come back unchanged. */
    public static String toHf(String ggufName) {
        for (Map.Entry<String, String> e : GLOBAL.entrySet()) {
            if (e.getValue().equals(ggufName)) {
                return e.getKey();
            }
        }
        Matcher m = GGUF_LAYER.matcher(ggufName);
        if (m.matches()) {
            for (Map.Entry<String, String> e : PER_LAYER.entrySet()) {
                if (e.getValue().equals(m.group(2))) {
                    return "model.layers." + m.group(1) + "." + e.getKey();
                }
            }
        }
        return ggufName;
    }
}
