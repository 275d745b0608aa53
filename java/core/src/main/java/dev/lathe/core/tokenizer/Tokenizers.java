package dev.lathe.core.tokenizer;

import dev.lathe.core.io.ModelFormatException;

/** Builds the {@link Tokenizer} a {@link Vocabulary} describes, after checking it is consistent. */
public final class Tokenizers {
    private Tokenizers() {
    }

    /**
     * A SentencePiece BPE tokenizer for model {@code "llama"}, a byte-level BPE tokenizer for
     * {@code "gpt2"}; anything else, or an inconsistent vocabulary, is a {@link ModelFormatException}
     * naming the vocabulary's source.
     */
    public static Tokenizer create(Vocabulary vocabulary) {
        String source = vocabulary.source() == null ? "vocabulary" : vocabulary.source();
        validate(vocabulary, source);
        String model = vocabulary.model();
        if ("llama".equals(model)) {
            if (vocabulary.scores() == null && vocabulary.merges() == null) {
                throw new ModelFormatException(source, "SentencePiece vocabulary has neither scores nor merges");
            }
            return new SentencePieceTokenizer(vocabulary);
        }
        if ("gpt2".equals(model)) {
            if (vocabulary.merges() == null) {
                throw new ModelFormatException(source, "byte-level BPE vocabulary has no merges");
            }
            return new ByteLevelBpeTokenizer(vocabulary, preTokenizerOf(vocabulary, source));
        }
        throw new ModelFormatException(source, "unsupported tokenizer model '" + model
                + "' (tokenizer.ggml.model); Lathe supports 'llama' (SentencePiece BPE) and 'gpt2' (byte-level BPE)");
    }

    private static PreTokenizer preTokenizerOf(Vocabulary vocabulary, String source) {
        if (vocabulary.preSplitRegexes() != null) {
            String name = vocabulary.pre() == null ? "tokenizer.json" : vocabulary.pre();
            return PreTokenizer.ofRegexes(name, vocabulary.preSplitRegexes(), source);
        }
        // NOTE: a gpt2 vocabulary without tokenizer.ggml.pre predates the key; llama.cpp runs
        // those with its "default" split, and so does Lathe. A name it does not know is an error.
        return PreTokenizer.forName(vocabulary.pre() == null ? "default" : vocabulary.pre(), source);
    }

    private static void validate(Vocabulary v, String source) {
        if (v.tokens() == null || v.tokens().isEmpty()) {
            throw new ModelFormatException(source, "vocabulary has no tokens");
        }
        int n = v.size();
        for (int id = 0; id < n; id++) {
            if (v.tokens().get(id) == null) {
                throw new ModelFormatException(source, "token " + id + " has no text");
            }
        }
        if (v.scores() != null && v.scores().length != n) {
            throw new ModelFormatException(source, "expected " + n + " scores (one per token), found " + v.scores().length);
        }
        if (v.tokenTypes() != null) {
            if (v.tokenTypes().length != n) {
                throw new ModelFormatException(source, "expected " + n + " token types, found " + v.tokenTypes().length);
            }
            for (int id = 0; id < n; id++) {
                int type = v.tokenTypes()[id];
                if (type < Vocabulary.TYPE_NORMAL || type > Vocabulary.TYPE_BYTE) {
                    throw new ModelFormatException(source, "token " + id + " has type " + type + ", expected 1..6");
                }
            }
        }
        checkId(v.bosId(), "BOS", n, source);
        checkId(v.eosId(), "EOS", n, source);
        checkId(v.eotId(), "EOT", n, source);
        checkId(v.unknownId(), "unknown", n, source);
    }

    private static void checkId(int id, String what, int n, String source) {
        if (id < -1 || id >= n) {
            throw new ModelFormatException(source, what + " token id " + id + " is outside the vocabulary (0.." + (n - 1) + ")");
        }
    }
}
