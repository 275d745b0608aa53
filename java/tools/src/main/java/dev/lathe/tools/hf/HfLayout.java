package dev.lathe.tools.hf;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;

/**
 * A model in Hugging Face's layout: half-split RoPE pairs {@code (i, i + headDim/2)}. GGUF "llama"
 * files and llama2.c checkpoints rotate interleaved pairs {@code (2i, 2i+1)}; llama.cpp's converter
 * got there by permuting the Q and K rows of each head ({@code permute} in convert_hf_to_gguf.py),
 * so this undoes it: HF row {@code h*d + p*d/2 + i} is interleaved row {@code h*d + 2i + p}. The
 * attention scores are the same (each head's dot products over the same values, summed in another
 * order); everything else is untouched.
 */
public final class HfLayout {
    private HfLayout() {
    }

    /** {@code model} itself when already half-split, else a view with Q/K rows reordered (copies in {@code arena}). */
    public static LoadedModel of(LoadedModel model, Arena arena) {
        LlamaConfig c = model.config();
        if (c.ropeStyle() == RopeStyle.HALF_SPLIT) {
            return model;
        }
        SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, WeightMatrix> e : model.tensors().entrySet()) {
            String name = e.getKey();
            WeightMatrix w = e.getValue();
            if (name.endsWith(".attn_q.bias") || name.endsWith(".attn_k.bias")) {
                throw new ModelFormatException(model.source(), name + ": Q/K biases with interleaved RoPE cannot be moved to the "
                        + "Hugging Face layout yet");
            }
            if (name.endsWith(".attn_q.weight")) {
                w = unpermuteRows(w, c.heads(), c.headDim(), arena);
            } else if (name.endsWith(".attn_k.weight")) {
                w = unpermuteRows(w, c.kvHeads(), c.headDim(), arena);
            }
            tensors.put(name, w);
        }
        LlamaConfig halfSplit = new LlamaConfig(c.architecture(), c.dim(), c.ffnDim(), c.layers(), c.heads(), c.kvHeads(),
                c.headDim(), c.vocabSize(), c.contextLength(), c.rmsNormEps(), c.ropeTheta(), RopeStyle.HALF_SPLIT,
                c.ropeScaling(), c.qkvBias(), c.tiedEmbeddings());
        return new LoadedModel(model.source(), model.format(), halfSplit, tensors, model.vocabulary(), model.metadata(), model.arena());
    }

    /** Rows of {@code heads} heads of {@code headDim}, from interleaved pair order to half-split order (row bytes copied). */
    static WeightMatrix unpermuteRows(WeightMatrix w, int heads, int headDim, Arena arena) {
        boolean rowsIndependent = w.format() instanceof GgmlType
                || (w.format() instanceof LatheFormat f && !f.isSparse24() && f.tableBytes(w.rows(), w.cols()) == 0);
        if (!rowsIndependent) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ", whose rows cannot be reordered by "
                    + "copying; convert from an unquantized model");
        }
        if (w.rows() != heads * headDim) {
            throw new IllegalArgumentException(w.name() + " has " + w.rows() + " rows, not " + heads + " heads of " + headDim);
        }
        long rowBytes = w.rowBytes();
        MemorySegment data = arena.allocate(rowBytes * w.rows(), 8);
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            for (int p = 0; p < 2; p++) {
                for (int i = 0; i < half; i++) {
                    long to = (long) h * headDim + p * half + i;
                    long from = (long) h * headDim + 2L * i + p;
                    MemorySegment.copy(w.data(), from * rowBytes, data, to * rowBytes, rowBytes);
                }
            }
        }
        return WeightMatrices.of(w.name(), w.format(), w.rows(), w.cols(), data);
    }
}
