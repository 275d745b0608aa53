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
 * @param merges     byte-level BPE merges in priority order, each "left right" (null for SentencePiece)
 * @param bosId      -1 when absent
 * @param eosId      -1 when absent
 * @param eotId      end-of-turn id (Llama 3 {@code <|eot_id|>}), -1 when absent
 * @param unknownId  -1 when absent
 * @param addBos     whether encoding a prompt prepends BOS
 * @param addSpacePrefix SentencePiece's add_dummy_prefix
 * @param source     the file the vocabulary was read from, for error messages
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
        String source) {

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
