package dev.lathe.core.format.llama2c;

import dev.lathe.core.model.LlamaConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The order in which llama2.c writes its tensors (export.py; run.c's memory_map_weights and
 * runq.c's init_quantized_tensors read them back the same way), under GGUF names.
 * Each kind of weight is written for all layers before the next kind.
 */
final class Llama2cLayout {
    private Llama2cLayout() {
    }

    /**
     * One tensor in file order.
     *
     * @param name GGUF name, or a llama2.c name for a table Lathe skips
     * @param rows output features (1 for a norm)
     * @param cols input features
     * @param kept false for data Lathe does not load (the legacy freq_cis tables)
     */
    record Entry(String name, int rows, int cols, boolean kept) {
        long elements() {
            return Math.multiplyExact((long) rows, (long) cols);
        }
    }

    /** The legacy fp32 checkpoint, after its 28-byte header. */
    static List<Entry> legacy(LlamaConfig c) {
        List<Entry> order = new ArrayList<>();
        order.add(new Entry("token_embd.weight", c.vocabSize(), c.dim(), true));
        perLayer(order, c, "attn_norm.weight", 1, c.dim());
        addProjections(order, c);
        perLayer(order, c, "ffn_norm.weight", 1, c.dim());
        addFeedForward(order, c);
        order.add(new Entry("output_norm.weight", 1, c.dim(), true));
        // NOTE: the legacy RoPE tables (seq_len x head_size/2, cos then sin) are skipped: Lathe computes RoPE from theta.
        order.add(new Entry("freq_cis_real", c.contextLength(), c.headDim() / 2, false));
        order.add(new Entry("freq_cis_imag", c.contextLength(), c.headDim() / 2, false));
        if (!c.tiedEmbeddings()) {
            order.add(new Entry("output.weight", c.vocabSize(), c.dim(), true));
        }
        return order;
    }

    /** The fp32 norms at the start of a version 2 file's body. */
    static List<Entry> quantizedNorms(LlamaConfig c) {
        List<Entry> order = new ArrayList<>();
        perLayer(order, c, "attn_norm.weight", 1, c.dim());
        perLayer(order, c, "ffn_norm.weight", 1, c.dim());
        order.add(new Entry("output_norm.weight", 1, c.dim(), true));
        return order;
    }

    /** The group-quantized matrices of a version 2 file, after its norms. */
    static List<Entry> quantizedMatrices(LlamaConfig c) {
        List<Entry> order = new ArrayList<>();
        order.add(new Entry("token_embd.weight", c.vocabSize(), c.dim(), true));
        addProjections(order, c);
        addFeedForward(order, c);
        if (!c.tiedEmbeddings()) {
            order.add(new Entry("output.weight", c.vocabSize(), c.dim(), true));
        }
        return order;
    }

    private static void addProjections(List<Entry> order, LlamaConfig c) {
        perLayer(order, c, "attn_q.weight", c.qDim(), c.dim());      // wq [qDim, dim]
        perLayer(order, c, "attn_k.weight", c.kvDim(), c.dim());     // wk [kvDim, dim]
        perLayer(order, c, "attn_v.weight", c.kvDim(), c.dim());     // wv [kvDim, dim]
        perLayer(order, c, "attn_output.weight", c.dim(), c.qDim()); // wo [dim, qDim]
    }

    // NOTE: llama2.c writes w1 (gate), w2 (down), w3 (up) in that order; GGUF names them by role.
    private static void addFeedForward(List<Entry> order, LlamaConfig c) {
        perLayer(order, c, "ffn_gate.weight", c.ffnDim(), c.dim()); // w1 [ffn, dim]
        perLayer(order, c, "ffn_down.weight", c.dim(), c.ffnDim()); // w2 [dim, ffn]
        perLayer(order, c, "ffn_up.weight", c.ffnDim(), c.dim());   // w3 [ffn, dim]
    }

    private static void perLayer(List<Entry> order, LlamaConfig c, String suffix, int rows, int cols) {
        for (int layer = 0; layer < c.layers(); layer++) {
            order.add(new Entry("blk." + layer + "." + suffix, rows, cols, true));
        }
    }
}
