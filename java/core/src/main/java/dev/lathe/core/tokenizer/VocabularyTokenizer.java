package dev.lathe.core.tokenizer;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * What both BPE tokenizers share: the piece-to-id index, special tokens, BOS/EOS and stop ids.
 * Subclasses turn one run of plain text (between special tokens) into ids.
 */
abstract sealed class VocabularyTokenizer implements Tokenizer permits SentencePieceTokenizer, ByteLevelBpeTokenizer {
    protected final Vocabulary vocabulary;
    protected final Map<String, Integer> idsByPiece;
    private final SpecialTokenMatcher specialTokens;
    private final int[] stopIds;

    VocabularyTokenizer(Vocabulary vocabulary) {
        this.vocabulary = vocabulary;
        List<String> tokens = vocabulary.tokens();
        this.idsByPiece = HashMap.newHashMap(tokens.size());
        for (int id = 0; id < tokens.size(); id++) {
            // NOTE: a duplicated piece maps to its last id, as llama.cpp's token_to_id does.
            idsByPiece.put(tokens.get(id), id);
        }
        this.specialTokens = new SpecialTokenMatcher(vocabulary);
        IntStream.Builder stops = IntStream.builder();
        if (vocabulary.eosId() >= 0) {
            stops.add(vocabulary.eosId());
        }
        if (vocabulary.eotId() >= 0 && vocabulary.eotId() != vocabulary.eosId()) {
            stops.add(vocabulary.eotId());
        }
        this.stopIds = stops.build().toArray();
    }

    /**
     * Appends the ids of {@code text} (plain text, never empty) to {@code out}.
     *
     * @param atStart true when {@code text} begins the input or follows a special token
     */
    abstract void encodeText(String text, boolean atStart, IntStream.Builder out);

    @Override
    public final int[] encode(String text, boolean addBos, boolean parseSpecial) {
        IntStream.Builder out = IntStream.builder();
        // NOTE: as llama.cpp's add_special, a request for BOS is honoured only where the model
        // starts prompts with one: GPT-2 has a BOS id but its prompts do not begin with it.
        if (addBos && vocabulary.addBos() && vocabulary.bosId() >= 0) {
            out.add(vocabulary.bosId());
        }
        boolean atStart = true;
        for (SpecialTokenMatcher.Fragment fragment : specialTokens.split(text, parseSpecial)) {
            if (fragment.isToken()) {
                out.add(fragment.tokenId());
                atStart = true;
            } else {
                encodeText(fragment.text(), atStart, out);
                atStart = false;
            }
        }
        return out.build().toArray();
    }

    @Override
    public final int vocabSize() {
        return vocabulary.size();
    }

    @Override
    public final String piece(int id) {
        return vocabulary.tokens().get(checkedId(id));
    }

    @Override
    public final boolean isControl(int id) {
        return vocabulary.tokenType(checkedId(id)) == Vocabulary.TYPE_CONTROL;
    }

    /** {@code id}, or an exception that says it is not a token of this vocabulary. */
    protected final int checkedId(int id) {
        if (id < 0 || id >= vocabulary.size()) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of "
                    + vocabulary.size() + " tokens (" + vocabulary.source() + ")");
        }
        return id;
    }

    @Override
    public final int bosId() {
        return vocabulary.bosId();
    }

    @Override
    public final int eosId() {
        return vocabulary.eosId();
    }

    @Override
    public final int[] stopIds() {
        return stopIds.clone();
    }
}
