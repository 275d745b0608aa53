package dev.lathe.tools.quant;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;

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
 */
// NOTE: no ragged last group: a fallback to 8 bits for the few odd tensors (e.g. stories260K's
// FFN width 172) keeps every kernel on whole groups, and costs little size.
public final class TensorPlanner {
    private TensorPlanner() {
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
