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
        boolean spm = model.equals("llama");
        // NOTE: llama.cpp merges SentencePiece vocabularies by score and ignores any merges a
        // converter wrote alongside; so does Lathe (merges would switch to merge-rank order).
        List<String> merges = !spm && md.has("tokenizer.ggml.merges") ? md.stringArray("tokenizer.ggml.merges") : null;
        if (scores != null && scores.length != n) {
            throw new ModelFormatException(source, "tokenizer.ggml.scores has " + scores.length + " entries for " + n + " tokens");
        }
        if (types != null && types.length != n) {
            throw new ModelFormatException(source, "tokenizer.ggml.token_type has " + types.length + " entries for " + n + " tokens");
        }
        if (types != null) {
            types = types.clone();
            for (int id = 0; id < n; id++) {
                if (types[id] == 0) {
                    types[id] = Vocabulary.TYPE_NORMAL; // NOTE: 0 is "undefined" in older files; llama.cpp reads it as normal
                }
            }
        }
        String pre = md.optString("tokenizer.ggml.pre").orElse(null);
        // NOTE: llama.cpp's defaults when a key is absent: SentencePiece models add BOS and a space
        // prefix; byte-level BPE models add neither, except the Llama 3 pre-tokenizer family,
        // which llama.cpp gives BOS even when a file omits add_bos_token.
        return new Vocabulary(
                model,
                pre,
                tokens,
                scores,
                types,
                merges,
                tokenId(md, "tokenizer.ggml.bos_token_id", n),
                tokenId(md, "tokenizer.ggml.eos_token_id", n),
                md.has("tokenizer.ggml.eot_token_id")
                        ? tokenId(md, "tokenizer.ggml.eot_token_id", n)
                        : EndOfTurnToken.find(tokens, types, tokenId(md, "tokenizer.ggml.eos_token_id", n)),
                tokenId(md, "tokenizer.ggml.unknown_token_id", n),
                md.optBool("tokenizer.ggml.add_bos_token", spm || PreTokenizer.ignoresMerges(pre)),
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
