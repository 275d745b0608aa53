package dev.lathe.core.model;

import dev.lathe.core.io.ModelFormatException;

/**
 * Hyper-parameters of a Llama-family decoder (Llama 2/3, Mistral, Qwen2, TinyLlama, SmolLM).
 *
 * @param architecture  the name the file gives (GGUF general.architecture, HF architectures[0])
 * @param dim           model width (embedding length)
 * @param ffnDim        SwiGLU hidden width
 * @param layers        decoder blocks
 * @param heads         query heads
 * @param kvHeads       key/value heads (grouped-query attention when fewer than heads)
 * @param headDim       per-head width (usually dim / heads)
 * @param vocabSize     rows of the embedding table
 * @param contextLength longest sequence the model supports
 * @param rmsNormEps    RMSNorm epsilon
 * @param ropeTheta     RoPE base frequency
 * @param ropeStyle     which dimensions rotate together
 * @param ropeScaling   Llama 3.1 scaling, or null
 * @param qkvBias       Q/K/V projections carry a bias (Qwen2)
 * @param tiedEmbeddings the output head is the embedding table
 */
public record LlamaConfig(
        String architecture,
        int dim,
        int ffnDim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int vocabSize,
        int contextLength,
        float rmsNormEps,
        float ropeTheta,
        RopeStyle ropeStyle,
        RopeScaling ropeScaling,
        boolean qkvBias,
        boolean tiedEmbeddings) {

    /** Hard upper bounds: anything larger is a corrupt or hostile file, not a model. */
    private static final int MAX_DIM = 1 << 16;
    private static final int MAX_LAYERS = 1024;
    private static final int MAX_VOCAB = 1 << 22;
    private static final int MAX_CONTEXT = 1 << 24;

    /** Throws {@link ModelFormatException} naming {@code source} when the numbers cannot describe a model. */
    public LlamaConfig validate(String source) {
        check(source, "embedding length", dim, 1, MAX_DIM);
        check(source, "feed-forward length", ffnDim, 1, 4 * MAX_DIM);
        check(source, "block count", layers, 1, MAX_LAYERS);
        check(source, "head count", heads, 1, dim);
        check(source, "KV head count", kvHeads, 1, heads);
        check(source, "head dimension", headDim, 2, MAX_DIM);
        check(source, "vocabulary size", vocabSize, 1, MAX_VOCAB);
        check(source, "context length", contextLength, 1, MAX_CONTEXT);
        if (heads % kvHeads != 0) {
            throw new ModelFormatException(source, "head count " + heads + " is not a multiple of KV head count " + kvHeads);
        }
        if (headDim % 2 != 0) {
            throw new ModelFormatException(source, "head dimension " + headDim + " is odd; RoPE needs pairs");
        }
        if (!(rmsNormEps > 0 && rmsNormEps < 1)) {
            throw new ModelFormatException(source, "RMSNorm epsilon " + rmsNormEps + " is not in (0, 1)");
        }
        if (!(ropeTheta > 0 && Float.isFinite(ropeTheta))) {
            throw new ModelFormatException(source, "RoPE base " + ropeTheta + " is not a positive number");
        }
        return this;
    }

    private static void check(String source, String what, int value, int min, int max) {
        if (value < min || value > max) {
            throw new ModelFormatException(source, what + " " + value + " is outside [" + min + ", " + max + "]");
        }
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Query heads sharing one KV head. */
    public int groupSize() {
        return heads / kvHeads;
    }
}
