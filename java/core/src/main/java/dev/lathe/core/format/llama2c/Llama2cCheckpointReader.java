package dev.lathe.core.format.llama2c;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.MappedFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * Reads a legacy llama2.c checkpoint (export.py "version 0", e.g. stories260K.bin): seven int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means
 * the classifier is stored separately), then every weight as f32 in {@link Llama2cLayout#legacy} order.
 * The weights stay in the mapped file.
 */
public final class Llama2cCheckpointReader {
    public static final String FORMAT = "llama2.c";

    private Llama2cCheckpointReader() {
    }

    /** Maps and reads the checkpoint; any inconsistency is a {@link ModelFormatException} naming the file. */
    public static LoadedModel read(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MappedFile file = MappedFile.map(path, arena);
            Llama2cHeader header = Llama2cHeader.read(file, 0, true, false);
            LlamaConfig config = header.toConfig(file.source());
            List<Llama2cLayout.Entry> order = Llama2cLayout.legacy(config);
            long expected = expectedSize(order);
            if (file.size() != expected) {
                throw new ModelFormatException(file.source(), "the header " + header + " implies " + expected
                        + " bytes but the file has " + file.size() + " (truncated, or not a legacy llama2.c checkpoint)");
            }
            SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
            long offset = Llama2cHeader.LEGACY_HEADER_BYTES;
            for (Llama2cLayout.Entry entry : order) {
                long bytes = Math.multiplyExact(entry.elements(), 4L);
                if (entry.kept()) {
                    tensors.put(entry.name(), WeightMatrices.of(entry.name(), GgmlType.F32, entry.rows(), entry.cols(),
                            file.slice(offset, bytes, entry.name())));
                }
                offset += bytes;
            }
            // NOTE: llama2.c keeps the tokenizer in a separate tokenizer.bin (tok512.bin), which
            // TokenizerLoader.forModel takes as its override; the checkpoint has no vocabulary.
            return new LoadedModel(file.source(), FORMAT, config, tensors, null, metadata(header, FORMAT), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static long expectedSize(List<Llama2cLayout.Entry> order) {
        long total = Llama2cHeader.LEGACY_HEADER_BYTES;
        for (Llama2cLayout.Entry entry : order) {
            total = Math.addExact(total, Math.multiplyExact(entry.elements(), 4L));
        }
        return total;
    }

    static SequencedMap<String, Object> metadata(Llama2cHeader header, String format) {
        SequencedMap<String, Object> metadata = new LinkedHashMap<>();
        metadata.put("format", format);
        metadata.put("llama2c.dim", header.dim());
        metadata.put("llama2c.hidden_dim", header.hiddenDim());
        metadata.put("llama2c.n_layers", header.layers());
        metadata.put("llama2c.n_heads", header.heads());
        metadata.put("llama2c.n_kv_heads", header.kvHeads());
        metadata.put("llama2c.vocab_size", header.vocabSize());
        metadata.put("llama2c.seq_len", header.seqLen());
        metadata.put("llama2c.shared_classifier", header.sharedClassifier());
        return metadata;
    }
}
