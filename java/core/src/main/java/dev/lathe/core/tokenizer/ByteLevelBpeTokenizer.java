package dev.lathe.core.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Byte-level BPE (GPT-2, Llama 3, Qwen2, DeepSeek, ...), as llama.cpp's llm_tokenizer_bpe and
 * HF's ByteLevel + BPE run it: the pre-tokenizer splits text into words; each word's UTF-8
 * bytes become GPT-2's printable stand-in characters, one symbol per byte; then the adjacent pair
 * with the lowest merge rank merges until none is in the merge list. Every byte has a token, so
 * nothing is ever unknown.
 */
final class ByteLevelBpeTokenizer extends VocabularyTokenizer {
    private final PreTokenizer preTokenizer;
    private final Map<String, Integer> mergeRanks;
    private final boolean ignoreMerges;

    ByteLevelBpeTokenizer(Vocabulary vocabulary, PreTokenizer preTokenizer) {
        super(vocabulary);
        this.preTokenizer = preTokenizer;
        List<String> merges = vocabulary.merges() == null ? List.of() : vocabulary.merges();
        this.mergeRanks = HashMap.newHashMap(merges.size());
        for (int rank = 0; rank < merges.size(); rank++) {
            mergeRanks.putIfAbsent(merges.get(rank), rank);
        }
        this.ignoreMerges = vocabulary.ignoreMerges() || PreTokenizer.ignoresMerges(vocabulary.pre());
    }

    @Override
    void encodeText(String text, boolean atStart, IntStream.Builder out) {
        // NOTE: HF ByteLevel's add_prefix_space puts a space before every text run that lacks one.
        String input = vocabulary.addSpacePrefix() && !text.startsWith(" ") ? " " + text : text;
        for (String word : preTokenizer.split(input)) {
            encodeWord(GptByteMapping.encode(word.getBytes(StandardCharsets.UTF_8)), out);
        }
    }

    private void encodeWord(String mapped, IntStream.Builder out) {
        if (ignoreMerges) {
            Integer whole = idsByPiece.get(mapped);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        // Every mapped char is in the BMP, so char boundaries are byte boundaries.
        int[] bounds = new int[mapped.length() + 1];
        for (int i = 0; i < bounds.length; i++) {
            bounds[i] = i;
        }
        bounds = SymbolMerger.merge(mapped, bounds, this::pairScore);
        for (int i = 0; i + 1 < bounds.length; i++) {
            String symbol = mapped.substring(bounds[i], bounds[i + 1]);
            Integer id = idsByPiece.get(symbol);
            if (id != null) {
                out.add(id);
                continue;
            }
            // NOTE: only reachable with a vocabulary lacking some single bytes (llama.cpp then
            // drops them); Lathe keeps the position with the unknown id when there is one.
            for (int j = 0; j < symbol.length(); j++) {
                Integer byteId = idsByPiece.get(symbol.substring(j, j + 1));
                if (byteId != null) {
                    out.add(byteId);
                } else if (vocabulary.unknownId() >= 0) {
                    out.add(vocabulary.unknownId());
                }
            }
        }
    }

    private double pairScore(String word, int start, int mid, int end) {
        Integer rank = mergeRanks.get(word.substring(start, mid) + " " + word.substring(mid, end));
        return rank == null ? Double.NaN : -rank;
    }

    @Override
    public byte[] decodeBytes(int id) {
        String piece = vocabulary.tokens().get(checkedId(id));
        return switch (vocabulary.tokenType(id)) {
            case Vocabulary.TYPE_CONTROL, Vocabulary.TYPE_UNUSED -> new byte[0];
            case Vocabulary.TYPE_USER_DEFINED -> piece.getBytes(StandardCharsets.UTF_8);
            default -> {
                byte[] bytes = GptByteMapping.decode(piece);
                yield bytes != null ? bytes : piece.getBytes(StandardCharsets.UTF_8);
            }
        };
    }

    @Override
    public String describe() {
        return "byte-level BPE (" + preTokenizer.name() + ")";
    }
}
