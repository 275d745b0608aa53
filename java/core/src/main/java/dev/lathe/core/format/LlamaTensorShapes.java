package dev.lathe.core.format;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.SequencedMap;

/**
 * The tensors a Llama-family model with a given config must have, under GGUF names, each with its
 * {@code [rows, cols]} (rows = output features; a norm or a bias is one row). Loaders check what a
 * file holds against this, so a wrong shape is reported where it is read, with both shapes.
 */
public final class LlamaTensorShapes {
    private LlamaTensorShapes() {
    }

    /** Required tensors in model order, embedding first, with their {@code [rows, cols]}. */
    public static SequencedMap<String, int[]> required(LlamaConfig c) {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("token_embd.weight", new int[]{c.vocabSize(), c.dim()});
        for (int layer = 0; layer < c.layers(); layer++) {
            String blk = "blk." + layer + ".";
            shapes.put(blk + "attn_norm.weight", new int[]{1, c.dim()});
            shapes.put(blk + "attn_q.weight", new int[]{c.qDim(), c.dim()});
            shapes.put(blk + "attn_k.weight", new int[]{c.kvDim(), c.dim()});
            shapes.put(blk + "attn_v.weight", new int[]{c.kvDim(), c.dim()});
            if (c.qkvBias()) {
                shapes.put(blk + "attn_q.bias", new int[]{1, c.qDim()});
                shapes.put(blk + "attn_k.bias", new int[]{1, c.kvDim()});
                shapes.put(blk + "attn_v.bias", new int[]{1, c.kvDim()});
            }
            shapes.put(blk + "attn_output.weight", new int[]{c.dim(), c.qDim()});
            shapes.put(blk + "ffn_norm.weight", new int[]{1, c.dim()});
            shapes.put(blk + "ffn_gate.weight", new int[]{c.ffnDim(), c.dim()});
            shapes.put(blk + "ffn_up.weight", new int[]{c.ffnDim(), c.dim()});
            shapes.put(blk + "ffn_down.weight", new int[]{c.dim(), c.ffnDim()});
        }
        shapes.put("output_norm.weight", new int[]{1, c.dim()});
        if (!c.tiedEmbeddings()) {
            shapes.put("output.weight", new int[]{c.vocabSize(), c.dim()});
        }
        return shapes;
    }

    /**
     * Throws when {@code found} differs from {@code expected}, naming the tensor (as {@code label}, which
     * may give the file's own name too) and both shapes.
     */
    public static void check(String source, String label, int[] expected, long[] found) {
        boolean same = expected.length == found.length;
        for (int i = 0; same && i < expected.length; i++) {
            same = expected[i] == found[i];
        }
        if (!same) {
            throw new ModelFormatException(source, "tensor " + label + " should have shape "
                    + Arrays.toString(expected) + " but has " + Arrays.toString(found));
        }
    }
}
