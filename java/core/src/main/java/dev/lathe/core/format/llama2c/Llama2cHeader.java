package dev.lathe.core.format.llama2c;

import dev.lathe.core.io.MappedFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;

/**
 * The seven hyper-parameters every llama2.c checkpoint starts with (run.c's {@code Config}), plus
 * whether the classifier shares the embedding table.
 *
 * @param dim              model width
 * @param hiddenDim        SwiGLU hidden width
 * @param layers           decoder blocks
 * @param heads            query heads
 * @param kvHeads          key/value heads
 * @param vocabSize        embedding rows (always positive here; the legacy sign flag is decoded)
 * @param seqLen           trained context length
 * @param sharedClassifier the output head is the embedding table
 */
public record Llama2cHeader(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize, int seqLen,
                            boolean sharedClassifier) {

    /** Bytes of the legacy header: seven int32. */
    public static final int LEGACY_HEADER_BYTES = 7 * 4;

    // NOTE: llama2.c's reference run.c hard-codes these; the checkpoint does not carry them.
    public static final float RMS_NORM_EPS = 1e-5f;
    public static final float ROPE_THETA = 10000f;

    /** Reads the seven int32 at {@code offset}; {@code signedVocab} decodes the legacy "negative = own classifier" flag. */
    static Llama2cHeader read(MappedFile file, long offset, boolean signedVocab, boolean sharedFlag) {
        int dim = file.int32(offset, "header dim");
        int hiddenDim = file.int32(offset + 4, "header hidden_dim");
        int layers = file.int32(offset + 8, "header n_layers");
        int heads = file.int32(offset + 12, "header n_heads");
        int kvHeads = file.int32(offset + 16, "header n_kv_heads");
        int vocab = file.int32(offset + 20, "header vocab_size");
        int seqLen = file.int32(offset + 24, "header seq_len");
        boolean shared = sharedFlag;
        if (signedVocab) {
            if (vocab == Integer.MIN_VALUE) {
                throw new ModelFormatException(file.source(), "header vocab_size " + vocab + " is not a vocabulary size");
            }
            shared = vocab > 0;
            vocab = Math.abs(vocab);
        }
        return new Llama2cHeader(dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen, shared);
    }

    /** The validated model configuration; every llama2.c model uses interleaved RoPE and tied or separate heads as flagged. */
    public LlamaConfig toConfig(String source) {
        int headDim = heads > 0 ? dim / heads : 0;
        LlamaConfig config = new LlamaConfig("llama", dim, hiddenDim, layers, heads, kvHeads, headDim, vocabSize, seqLen,
                RMS_NORM_EPS, ROPE_THETA, RopeStyle.INTERLEAVED, null, false, sharedClassifier).validate(source);
        if (dim % heads != 0) {
            throw new ModelFormatException(source, "header dim " + dim + " is not a multiple of n_heads " + heads);
        }
        return config;
    }
}
