package dev.lathe.core.tokenizer;

import dev.lathe.core.gguf.GgufMetadata;
import dev.lathe.core.io.ModelFormatException;

import java.util.List;

/** The tokenizer.ggml.* metadata of a GGUF file as a {@link Vocabulary}. */
public final class GgufVocabularyReader {
    private GgufVocabularyReader() {
    }

    public static Vocabulary read(GgufMetadata md) {
        String source = md.source();
        String model = md.string("tokenizer.ggml.model");
        List<String> tokens = md.stringArray("tokenizer.ggml.tokens");
        int n = tokens.size();
        float[] scores = md.has("tokenizer.ggml.scores") ? md.floatArray("tokenizer.ggml.scores") : null;
        int[] types = md.has("tokenizer.ggml.token_type") ? md.intArray("tokenizer.ggml.token_type") : null;
        List<String> merges = md.has("tokenizer.ggml.merges") ? md.stringArray("tokenizer.ggml.merges") : null;
        if (scores != null && scores.length != n) {
            throw new ModelFormatException(source, "tokenizer.ggml.scores has " + scores.length + " entries for " + n + " tokens");
        }
        if (types != null && types.length != n) {
            throw new ModelFormatException(source, "tokenizer.ggml.token_type has " + types.length + " entries for " + n + " tokens");
        }
        boolean spm = model.equals("llama");
        // NOTE: llama.cpp's defaults when a key is absent: SentencePiece models add BOS and a space
        // prefix; byte-level BPE models add neither (Llama 3 files set add_bos_token explicitly).
        return new Vocabulary(
                model,
                md.optString("tokenizer.ggml.pre").orElse(null),
                tokens,
                scores,
                types,
                merges,
                tokenId(md, "tokenizer.ggml.bos_token_id", n),
                tokenId(md, "tokenizer.ggml.eos_token_id", n),
                tokenId(md, "tokenizer.ggml.eot_token_id", n),
                tokenId(md, "tokenizer.ggml.unknown_token_id", n),
                md.optBool("tokenizer.ggml.add_bos_token", spm),
                md.optBool("tokenizer.ggml.add_space_prefix", spm),
                source);
    }

    /** A token id from metadata; absent, or written as -1 / 0xFFFFFFFF (llama.cpp's "none"), is -1. */
    private static int tokenId(GgufMetadata md, String key, int vocabularySize) {
        if (!md.has(key)) {
            return -1;
        }
        long id = md.integer(key);
        if (id == -1 || id == 0xFFFF_FFFFL) {
            return -1;
        }
        if (id < 0 || id >= vocabularySize) {
            throw new ModelFormatException(md.source(), key + " = " + id + " is outside the vocabulary [0, " + vocabularySize + ")");
        }
        return (int) id;
    }
}
