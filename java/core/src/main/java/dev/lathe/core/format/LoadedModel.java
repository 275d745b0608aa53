package dev.lathe.core.format;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Vocabulary;

import java.lang.foreign.Arena;
import java.util.Map;
import java.util.SequencedMap;

/**
 * A model read from any supported file: its hyper-parameters, its weights (memory-mapped, under
 * GGUF tensor names whatever the source format), its tokenizer data when the file carries it, and the
 * file's metadata for display. Closing it unmaps the file.
 *
 * @param source    the path the model was read from
 * @param format    a short name of the container, e.g. {@code "GGUF v3"}, {@code "llama2.c"}
 * @param config    validated hyper-parameters
 * @param tensors   weights by GGUF name ({@code token_embd.weight}, {@code blk.N.attn_q.weight}, ...)
 * @param vocabulary the model's own tokenizer data, or null when the file has none
 *                  ({@code Tokenizers.create} builds the tokenizer)
 * @param metadata  key/value metadata as read (for {@code lathe inspect}); arrays are summarised
 * @param arena     owns the mappings
 */
public record LoadedModel(
        String source,
        String format,
        LlamaConfig config,
        SequencedMap<String, WeightMatrix> tensors,
        Vocabulary vocabulary,
        SequencedMap<String, Object> metadata,
        Arena arena) implements AutoCloseable {

    /** The tensor with this GGUF name; a missing one is a {@link ModelFormatException}. */
    public WeightMatrix tensor(String name) {
        WeightMatrix w = tensors.get(name);
        if (w == null) {
            throw new ModelFormatException(source, "required tensor '" + name + "' is missing");
        }
        return w;
    }

    /** The tensor with this name, or null. */
    public WeightMatrix optionalTensor(String name) {
        return tensors.get(name);
    }

    public long weightBytes() {
        long total = 0;
        for (WeightMatrix w : tensors.values()) {
            total += w.byteSize();
        }
        return total;
    }

    public Map<String, WeightMatrix> tensorMap() {
        return tensors;
    }

    @Override
    public void close() {
        arena.close();
    }
}
