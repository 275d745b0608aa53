package dev.lathe.tools.quant;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrix;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The mixed-precision rule: which format each tensor gets.
 * <ol>
 * <li>Vectors (norm weights, biases: one row) stay as they are.</li>
 * <li>The token embedding and the output head ({@code token_embd.weight}, {@code output.weight})
 *     are kept at 8 bits (Q8_0 for ggml methods, INT8 per channel for Lathe's) or as they are
 *     when that is what they already are or their rows are not whole Q8_0 blocks.</li>
 * <li>Every other matrix gets the method's format when its K (row length) is a whole number of
 *     the format's blocks or groups; otherwise the higher-precision fallback: Q8_0 (ggml methods,
 *     K a multiple of 32; else F16 from F32) or INT8 per channel (Lathe methods, any K).</li>
 * </ol>
 * The K-quant mixes (q4_k_m, q5_k_m) follow llama.cpp's llama_tensor_get_type for Llama-family
 * models instead: every matrix the base type (Q4_K or Q5_K), the token embedding included, except
 * <ul>
 * <li>{@code output.weight} (or, with no output head, the tied {@code token_embd.weight}): Q6_K;</li>
 * <li>{@code blk.N.attn_v.weight} and {@code blk.N.ffn_down.weight}: Q6_K where
 *     {@link #useMoreBits}(N, layers): the first and last eighth of the layers, and every third
 *     layer between.</li>
 * </ul>
 * Rows that are not whole 256-value super-blocks take rule 3's fallback (llama.cpp would pick
 * Q5_0/Q5_1/Q8_0 by type); llama.cpp's adjustments for 70B models, mixtures of experts and Falcon
 * are not made.
 */
// NOTE: no ragged last group: a fallback to 8 bits for the few odd tensors (e.g. stories260K's
// FFN width 172) keeps every kernel on whole groups, and costs little size.
public final class TensorPlanner {
    private TensorPlanner() {
    }

    private static final Pattern LAYER = Pattern.compile("blk\\.(\\d+)\\.");

    /** Every tensor's format (null: kept as it is), by {@link #plan} or, for the K-quant mixes, their rule. */
    public static Map<String, WeightFormat> planAll(Map<String, WeightMatrix> tensors, QuantOptions options) {
        int layers = 0;
        for (String name : tensors.keySet()) {
            layers = Math.max(layers, layer(name) + 1);
        }
        boolean mix = options.method() == QuantMethod.Q4_K_M || options.method() == QuantMethod.Q5_K_M;
        String head = tensors.containsKey("output.weight") ? "output.weight" : "token_embd.weight";
        Map<String, WeightFormat> plan = new LinkedHashMap<>();
        for (Map.Entry<String, WeightMatrix> e : tensors.entrySet()) {
            String name = e.getKey();
            WeightMatrix w = e.getValue();
            WeightFormat format = plan(name, w.rows(), w.cols(), w.format(), options);
            plan.put(name, mix && w.rows() > 1 ? kQuantMix(name, w, format, name.equals(head), layers, options) : format);
        }
        return plan;
    }

    /**
     * The K-quant mixes' format for matrix {@code w} (the class comment), where {@code ruled} is the
     * format the rule above gave it and {@code head} says whether it is the output head; null keeps it.
     */
    private static WeightFormat kQuantMix(String name, WeightMatrix w, WeightFormat ruled, boolean head, int layers,
                                          QuantOptions options) {
        int layer = layer(name);
        boolean moreBits = head || (layer >= 0 && (name.endsWith(".attn_v.weight") || name.endsWith(".ffn_down.weight"))
                && useMoreBits(layer, layers));
        WeightFormat format;
        if (moreBits && fits(GgmlType.Q6_K, w.cols())) {
            format = GgmlType.Q6_K;
        } else if (name.equals("token_embd.weight") && fits(options.target(), w.cols())) {
            format = options.target(); // the base type, not rule 2's 8 bits
        } else {
            format = ruled;
        }
        return format == w.format() ? null : format;
    }

    /** llama.cpp's use_more_bits: layer i of n is among the first or last eighth, or every third between. */
    static boolean useMoreBits(int i, int n) {
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    }

    /** N of a {@code blk.N.} tensor, or -1. */
    private static int layer(String name) {
        Matcher m = LAYER.matcher(name);
        return m.lookingAt() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** The format for tensor {@code name} of shape {@code [rows, cols]} now stored as {@code source}; null keeps it. */
    public static WeightFormat plan(String name, int rows, int cols, WeightFormat source, QuantOptions options) {
        if (rows <= 1) {
            return null;
        }
        WeightFormat target = options.target();
        boolean ggml = target instanceof GgmlType;
        WeightFormat eightBit = ggml ? GgmlType.Q8_0 : LatheFormat.int8Channel();
        if (name.equals("token_embd.weight") || name.equals("output.weight")) {
            return fits(eightBit, cols) && !isEightBit(source) ? eightBit : null;
        }
        if (fits(target, cols)) {
            return target;
        }
        if (fits(eightBit, cols)) {
            return isEightBit(source) ? null : eightBit;
        }
        return ggml && source == GgmlType.F32 ? GgmlType.F16 : null;
    }

    private static boolean isEightBit(WeightFormat format) {
        return format == GgmlType.Q8_0 || format.equals(LatheFormat.int8Channel());
    }

    /** True when a row of {@code cols} values is a whole number of {@code format}'s blocks or groups. */
    public static boolean fits(WeightFormat format, int cols) {
        return switch (format) {
            case GgmlType t -> cols % t.blockSize == 0;
            case LatheFormat f -> f.fitsRow(cols);
        };
    }

    /** True for the matrices GPTQ and AWQ work on: a block's attention and FFN projections. */
    public static boolean isLinearLayer(String name) {
        return name.startsWith("blk.") && (name.endsWith("attn_q.weight") || name.endsWith("attn_k.weight")
                || name.endsWith("attn_v.weight") || name.endsWith("attn_output.weight") || name.endsWith("ffn_gate.weight")
                || name.endsWith("ffn_up.weight") || name.endsWith("ffn_down.weight"));
    }
}
