package dev.lathe.core.gguf;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.GgufVocabularyReader;
import dev.lathe.core.tokenizer.Vocabulary;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;

/** Reads a Llama-family GGUF file into a {@link LoadedModel}: config from metadata, weights mapped in place. */
public final class GgufModelReader {
    /** Architectures whose GGUF tensors and metadata follow the Llama layout. */
    private static final Set<String> SUPPORTED = Set.of("llama", "mistral", "qwen2");

    private GgufModelReader() {
    }

    public static LoadedModel read(Path path) {
        Arena arena = Arena.ofShared();
        try {
            return fromFile(GgufFile.open(path, arena), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The model in an already parsed file whose mapping {@code arena} owns (closing the model closes it). */
    public static LoadedModel fromFile(GgufFile gguf, Arena arena) {
        GgufMetadata md = gguf.metadata();
        LlamaConfig config = config(gguf);
        SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
        for (GgufTensorInfo info : gguf.tensors().values()) {
            tensors.put(info.name(), matrix(gguf, info));
        }
        Vocabulary vocabulary = md.has("tokenizer.ggml.model") ? GgufVocabularyReader.read(md) : null;
        SequencedMap<String, Object> metadata = new LinkedHashMap<>();
        md.asMap().forEach((k, v) -> metadata.put(k, v.summary()));
        return new LoadedModel(gguf.source(), "GGUF v" + gguf.version(), config, tensors, vocabulary, metadata, arena);
    }

    /**
     * Metadata key prefix naming a tensor's {@link LatheFormat} spec; the tensor is stored as I8 bytes
     * {@code [storedRows, rowBytes]} ({@link LatheFormat#storedRows}: {@code rows}, plus the absmax
     * table's rows for double-quant NF4).
     */
    public static final String LATHE_FORMAT_KEY = "lathe.tensor_format.";
    /** Metadata key prefix holding the logical column count of a tensor in a Lathe format. */
    public static final String LATHE_COLS_KEY = "lathe.tensor_cols.";

    static WeightMatrix matrix(GgufFile gguf, GgufTensorInfo info) {
        long rows = info.rowCount();
        long cols = info.rowLength();
        // NOTE: Lathe's own formats ride in GGUF as plain I8 byte tensors described by two metadata
        // keys, not as invented ggml type ids: other GGUF readers still parse the file (and can
        // tell a Lathe tensor when they meet one) instead of failing on an unknown type id.
        Optional<String> latheSpec = gguf.metadata().optString(LATHE_FORMAT_KEY + info.name());
        if (latheSpec.isPresent()) {
            String where = gguf.source() + " tensor " + info.name();
            LatheFormat format = LatheFormat.parse(latheSpec.get(), where);
            int logicalCols = gguf.metadata().boundedInt(LATHE_COLS_KEY + info.name(), 1, Integer.MAX_VALUE);
            long logicalRows = format.fitsRow(logicalCols) ? format.logicalRows(rows, logicalCols) : -1;
            if (info.type() != GgmlType.I8 || !format.fitsRow(logicalCols) || format.rowBytes(logicalCols) != cols
                    || logicalRows < 1 || logicalRows > Integer.MAX_VALUE) {
                throw new ModelFormatException(gguf.source(), "tensor " + info.name() + " says it is " + format + " with "
                        + logicalCols + " columns, so I8 rows of " + (format.fitsRow(logicalCols) ? format.rowBytes(logicalCols) : "?")
                        + " bytes, but it is " + info.type() + " of shape " + info.shapeString());
            }
            return WeightMatrices.of(info.name(), format, (int) logicalRows, logicalCols, gguf.data(info));
        }
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) {
            throw new ModelFormatException(gguf.source(), "tensor " + info.name() + " of shape " + info.shapeString()
                    + " has more than 2^31 rows or columns");
        }
        try {
            return WeightMatrices.of(info.name(), info.type(), (int) rows, (int) cols, gguf.data(info));
        } catch (ModelFormatException e) {
            throw new ModelFormatException(gguf.source(), e.getMessage(), e); // the message names the tensor
        }
    }

    /** Hyper-parameters from {@code <arch>.*} metadata, validated. */
    static LlamaConfig config(GgufFile gguf) {
        GgufMetadata md = gguf.metadata();
        String arch = md.string("general.architecture");
        if (!SUPPORTED.contains(arch)) {
            throw new ModelFormatException(gguf.source(), "architecture '" + arch + "' is not supported; Lathe runs "
                    + String.join(", ", SUPPORTED.stream().sorted().toList()));
        }
        int dim = md.boundedInt(arch + ".embedding_length", 1, 1 << 16);
        int heads = md.boundedInt(arch + ".attention.head_count", 1, dim);
        int kvHeads = md.optBoundedInt(arch + ".attention.head_count_kv", 1, heads).orElse(heads);
        int headDim = md.optBoundedInt(arch + ".attention.key_length", 1, 1 << 16).orElse(dim / heads);
        int ropeDims = md.optBoundedInt(arch + ".rope.dimension_count", 1, 1 << 16).orElse(headDim);
        if (ropeDims != headDim) {
            throw new ModelFormatException(gguf.source(), arch + ".rope.dimension_count is " + ropeDims
                    + " but heads are " + headDim + " wide; partial rotary embeddings are not supported");
        }
        GgufTensorInfo embedding = gguf.tensor("token_embd.weight");
        int vocab = md.optBoundedInt(arch + ".vocab_size", 1, 1 << 22)
                .orElse((int) Math.min(Integer.MAX_VALUE, embedding.rowCount()));
        String scalingType = md.optString(arch + ".rope.scaling.type").orElse("none");
        if (!scalingType.equals("none")) {
            throw new ModelFormatException(gguf.source(), arch + ".rope.scaling.type '" + scalingType
                    + "' is not supported (Llama 3.1 files carry rope_freqs.weight instead, which is)");
        }
        boolean qwen = arch.equals("qwen2");
        return new LlamaConfig(
                arch,
                dim,
                md.boundedInt(arch + ".feed_forward_length", 1, 1 << 18),
                md.boundedInt(arch + ".block_count", 1, 1024),
                heads,
                kvHeads,
                headDim,
                vocab,
                md.boundedInt(arch + ".context_length", 1, 1 << 24),
                md.optFloat(arch + ".attention.layer_norm_rms_epsilon").orElse(1e-5f),
                md.optFloat(arch + ".rope.freq_base").orElse(10000f),
                // NOTE: convert_hf_to_gguf.py permutes Llama/Mistral Q and K rows so ggml's
                // interleaved ("normal") RoPE applies; Qwen2 keeps HF's half-split ("neox") layout.
                qwen ? RopeStyle.HALF_SPLIT : RopeStyle.INTERLEAVED,
                null,
                gguf.tensors().containsKey("blk.0.attn_q.bias"),
                !gguf.tensors().containsKey("output.weight"))
                .validate(gguf.source());
    }
}
