package dev.lathe.core.model;

/** Which dimensions RoPE rotates together. */
public enum RopeStyle {
    /** Pairs (2i, 2i+1): llama2.c, and GGUF "llama" files (whose Q/K rows were permuted for it). */
    INTERLEAVED,
    /** Pairs (i, i + headDim/2): Hugging Face checkpoints and GGUF "qwen2" (ggml's NEOX mode). */
    HALF_SPLIT
}
