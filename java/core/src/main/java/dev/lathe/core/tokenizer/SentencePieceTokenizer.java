package dev.lathe.core.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * SentencePiece-style BPE (Llama 2, Mistral, TinyLlama), as llama.cpp's llm_tokenizer_spm runs
 * it: spaces become U+2581, a space is put before the text (the dummy prefix), the text starts as
 * one symbol per character, and the adjacent pair whose merged piece has the highest score merges
 * until none can. A character with no piece of its own falls back to its UTF-8 bytes as
 * {@code <0xXX>} tokens, or to the unknown token when the vocabulary has no byte tokens.
 */
final class SentencePieceTokenizer extends VocabularyTokenizer {
    static final char SPACE_MARK = '\u2581';
    private static final byte[] UNKNOWN_TEXT = "\u2585".getBytes(StandardCharsets.UTF_8);

    private final int[] byteTokenIds = new int[256];
    /** Merge rank by "left right" when the source gave merges (tokenizer.json), else null. */
    private final Map<String, Integer> mergeRanks;

    SentencePieceTokenizer(Vocabulary vocabulary) {
        super(vocabulary);
        Arrays.fill(byteTokenIds, -1);
        for (int b = 0; b < 256; b++) {
            Integer id = idsByPiece.get(byteTokenPiece(b));
            if (id != null) {
                byteTokenIds[b] = id;
            }
        }
        List<String> merges = vocabulary.merges();
        if (merges == null) {
            mergeRanks = null;
        } else {
            mergeRanks = HashMap.newHashMap(merges.size());
            for (int rank = 0; rank < merges.size(); rank++) {
                mergeRanks.putIfAbsent(merges.get(rank), rank);
            }
        }
    }

    static String byteTokenPiece(int b) {
        return String.format("<0x%02X>", b);
    }

    /** The byte a {@code <0xXX>} piece stands for, or -1. */
    static int byteOfPiece(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
            return -1;
        }
        int hi = Character.digit(piece.charAt(3), 16);
        int lo = Character.digit(piece.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    @Override
    void encodeText(String text, boolean atStart, IntStream.Builder out) {
        // NOTE: as llama.cpp, the dummy prefix goes before the first text and before any text that
        // follows a special token; a text that already starts with a space still gets one more.
        String prefixed = vocabulary.addSpacePrefix() && atStart ? " " + text : text;
        String word = prefixed.replace(' ', SPACE_MARK);
        int[] bounds = SymbolMerger.merge(word, SymbolMerger.codePointBoundaries(word), this::pairScore);
        for (int i = 0; i + 1 < bounds.length; i++) {
            String symbol = word.substring(bounds[i], bounds[i + 1]);
            int id = mergeableId(symbol);
            if (id >= 0) {
                out.add(id);
            } else {
                for (byte b : symbol.getBytes(StandardCharsets.UTF_8)) {
                    int byteId = byteTokenIds[b & 0xFF];
                    out.add(byteId >= 0 ? byteId : vocabulary.unknownId());
                }
            }
        }
    }

    private double pairScore(String word, int start, int mid, int end) {
        if (mergeRanks != null) {
            Integer rank = mergeRanks.get(word.substring(start, mid) + " " + word.substring(mid, end));
            return rank == null ? Double.NaN : -rank;
        }
        int id = mergeableId(word.substring(start, end));
        return id < 0 ? Double.NaN : vocabulary.scores()[id];
    }

    /**
     * The id of a piece text can turn into, or -1. NOTE: control, byte, unknown and unused pieces
     * are never formed from text (SentencePiece's rule), so "<0x41>" typed in a prompt stays text.
     */
    private int mergeableId(String piece) {
        Integer id = idsByPiece.get(piece);
        if (id == null) {
            return -1;
        }
        int type = vocabulary.tokenType(id);
        return type == Vocabulary.TYPE_NORMAL || type == Vocabulary.TYPE_USER_DEFINED ? id : -1;
    }

    @Override
    public byte[] decodeBytes(int id) {
        String piece = vocabulary.tokens().get(checkedId(id));
        return switch (vocabulary.tokenType(id)) {
            case Vocabulary.TYPE_CONTROL, Vocabulary.TYPE_UNUSED -> new byte[0];
            case Vocabulary.TYPE_UNKNOWN -> UNKNOWN_TEXT.clone();
            case Vocabulary.TYPE_BYTE -> {
                int b = byteOfPiece(piece);
                yield b >= 0 ? new byte[]{(byte) b} : piece.getBytes(StandardCharsets.UTF_8);
            }
            case Vocabulary.TYPE_USER_DEFINED -> piece.getBytes(StandardCharsets.UTF_8);
            default -> piece.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
        };
    }

    @Override
    public boolean addsSpacePrefix() {
        return vocabulary.addSpacePrefix();
    }

    @Override
    public String describe() {
        return "SentencePiece BPE" + (mergeRanks != null ? " (merge ranks)" : " (scores)");
    }
}
