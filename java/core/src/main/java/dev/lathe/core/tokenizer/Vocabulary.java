package dev.lathe.core.tokenizer;

import java.util.List;

/**
 * A tokenizer's data, independent of the file it came from (GGUF metadata, tokenizer.json,
 * a llama2.c tokenizer.bin). {@code Tokenizers.create} turns it into a {@link Tokenizer}.
 *
 * @param model      {@code "llama"} (SentencePiece BPE with scores and byte fallback) or
 *                   {@code "gpt2"} (byte-level BPE with merges), as GGUF's tokenizer.ggml.model
 * @param pre        the pre-tokenizer name as GGUF's tokenizer.ggml.pre ({@code "default"},
 *                   {@code "llama-bpe"}, {@code "qwen2"}, ...); null when the source has none
 * @param tokens     token pieces, indexed by id
 * @param scores     SentencePiece scores (null for byte-level BPE)
 * @param tokenTypes GGUF token types per id (1 normal, 2 unknown, 3 control, 4 user-defined,
 *                   5 unused, 6 byte); null means all normal
 * @param merges     BPE merges in priority order, each "left right"; null for a SentencePiece
 *                   vocabulary that merges by score (GGUF, tokenizer.bin). A SentencePiece-style
 *                   tokenizer.json keeps its merges, which then decide the merge order exactly
 * @param bosId      -1 when absent
 * @param eosId      -1 when absent
 * @param eotId      end-of-turn id (Llama 3 {@code <|eot_id|>}), -1 when absent
 * @param unknownId  -1 when absent
 * @param addBos     whether encoding a prompt prepends BOS
 * @param addSpacePrefix SentencePiece's add_dummy_prefix; for byte-level BPE, HF ByteLevel's
 *                   add_prefix_space
 * @param source     the file the vocabulary was read from, for error messages
 * @param preSplitRegexes explicit pre-tokenizer regexes (a tokenizer.json Split sequence), applied
 *                   in order; when non-null they replace the named {@code pre}
 * @param ignoreMerges byte-level BPE: a pre-tokenized word that is itself a token is emitted
 *                   whole, without merging (HF's ignore_merges, Llama 3)
 */
public record Vocabulary(
        String model,
        String pre,
        List<String> tokens,
        float[] scores,
        int[] tokenTypes,
        List<String> merges,
        int bosId,
        int eosId,
        int eotId,
        int unknownId,
        boolean addBos,
        boolean addSpacePrefix,
        String source,
        List<String> preSplitRegexes,
        boolean ignoreMerges) {

    /** A vocabulary whose pre-tokenizer is named by {@code pre} alone. */
    public Vocabulary(String model, String pre, List<String> tokens, float[] scores, int[] tokenTypes,
                      List<String> merges, int bosId, int eosId, int eotId, int unknownId, boolean addBos,
                      boolean addSpacePrefix, String source) {
        this(model, pre, tokens, scores, tokenTypes, merges, bosId, eosId, eotId, unknownId, addBos,
                addSpacePrefix, source, null, false);
    }

    public static final int TYPE_NORMAL = 1;
    public static final int TYPE_UNKNOWN = 2;
    public static final int TYPE_CONTROL = 3;
    public static final int TYPE_USER_DEFINED = 4;
    public static final int TYPE_UNUSED = 5;
    public static final int TYPE_BYTE = 6;

    public int size() {
        return tokens.size();
    }

    public int tokenType(int id) {
        return tokenTypes == null ? TYPE_NORMAL : tokenTypes[id];
    }
}
