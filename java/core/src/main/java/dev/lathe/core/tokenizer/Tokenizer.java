package dev.lathe.core.tokenizer;

/**
 * Text to token ids and back. Implementations: SentencePiece-style BPE with scores and byte
 * fallback (Llama 2, Mistral, TinyLlama) and byte-level BPE with merges and a pre-tokenizer
 * (GPT-2, Llama 3, Qwen2, ...).
 */
public interface Tokenizer {

    int vocabSize();

    /**
     * Token ids of {@code text}. Control tokens written in the text (e.g. {@code <|eot_id|>}) are
     * recognised only when {@code parseSpecial}. BOS is prepended when {@code addBos} and the
     * model's metadata says its prompts start with one (add_bos_token, and a BOS id): GPT-2's
     * prompts do not, Llama's do.
     */
    int[] encode(String text, boolean addBos, boolean parseSpecial);

    /** {@code encode(text, false, false)}. */
    default int[] encode(String text) {
        return encode(text, false, false);
    }

    /**
     * The bytes token {@code id} contributes to the output text (byte tokens map to their single
     * byte; control tokens contribute nothing). Several tokens may be needed to complete one UTF-8
     * character: use {@link TokenTextDecoder} to stream text.
     */
    byte[] decodeBytes(int id);

    /**
     * True when encoding puts a space before the text (SentencePiece's dummy prefix), a space
     * that decoding must drop again from the first word of a text; see {@link TokenTextDecoder}.
     */
    default boolean addsSpacePrefix() {
        return false;
    }

    /** The text of a whole sequence, as {@link TokenTextDecoder#decodeAll}. */
    default String decode(int[] ids) {
        return TokenTextDecoder.decodeAll(this, ids);
    }

    /** The token's piece as stored in the vocabulary, for display and debugging. */
    String piece(int id);

    /** True for control tokens (BOS, EOS, chat markers): never printed. */
    boolean isControl(int id);

    /** Beginning-of-sequence id, or -1 when the model uses none. */
    int bosId();

    /** End-of-sequence id, or -1. */
    int eosId();

    /** All ids that end generation (EOS, end-of-turn, ...). */
    int[] stopIds();

    /** A short description: kind and pre-tokenizer, e.g. {@code "byte-level BPE (llama-bpe)"}. */
    String describe();
}
