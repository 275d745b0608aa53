package dev.lathe.core.tokenizer;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lathe.core.io.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Reads a Hugging Face tokenizer.json (model type BPE) and, when given, its tokenizer_config.json,
 * into a {@link Vocabulary}. Two shapes are recognised:
 * <ul>
 *   <li>SentencePiece-style (Llama 2, Mistral, TinyLlama): byte_fallback, pieces with U+2581,
 *       a normalizer Prepend("▁") + Replace(" ", "▁") or a Metaspace pre-tokenizer. It becomes
 *       model "llama" keeping its merges, which fix the merge order exactly; scores are derived
 *       from merge rank for consumers that want them.</li>
 *   <li>Byte-level (GPT-2, Llama 3, Qwen2): a ByteLevel pre-tokenizer or decoder. It becomes model
 *       "gpt2" with the pre-tokenizer's Split / ByteLevel / Digits / Sequence turned into regexes.</li>
 * </ul>
 */
public final class TokenizerJsonReader {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizerJsonReader() {
    }

    public static Vocabulary read(Path tokenizerJson, Path tokenizerConfigOrNull) {
        String source = tokenizerJson.toString();
        JsonNode root = parse(tokenizerJson);
        JsonNode config = tokenizerConfigOrNull == null ? null : parse(tokenizerConfigOrNull);
        JsonNode model = root.path("model");
        if (!model.isObject()) {
            throw new ModelFormatException(source, "has no \"model\" object");
        }
        String type = model.path("type").asText("");
        if (!type.equals("BPE")) {
            throw new ModelFormatException(source, "model.type is '" + type + "'; Lathe reads BPE tokenizers only");
        }
        for (String field : List.of("continuing_subword_prefix", "end_of_word_suffix")) {
            if (!model.path(field).asText("").isEmpty()) {
                throw new ModelFormatException(source, "model." + field + " is set ('" + model.path(field).asText()
                        + "'); Lathe reads BPE tokenizers without word affixes only");
            }
        }
        TokenTable table = TokenTable.of(model.path("vocab"), root.path("added_tokens"), source);
        List<String> merges = readMerges(model.path("merges"), source);

        boolean spmStyle = model.path("byte_fallback").asBoolean(false) || looksLikeSentencePiece(root);
        boolean byteLevel = mentionsType(root.path("pre_tokenizer"), "ByteLevel") || mentionsType(root.path("decoder"), "ByteLevel");
        if (spmStyle == byteLevel) {
            throw new ModelFormatException(source, "cannot tell whether this BPE tokenizer is SentencePiece-style"
                    + " (byte_fallback, ▁ pieces) or byte-level (ByteLevel pre-tokenizer): found "
                    + (spmStyle ? "both" : "neither"));
        }
        int unknownId = model.path("unk_token").isTextual() ? table.idOf(model.path("unk_token").asText()) : -1;
        if (unknownId >= 0) {
            table.types[unknownId] = Vocabulary.TYPE_UNKNOWN;
        }
        SpecialIds ids = specialIds(root, config, table, source);
        if (spmStyle) {
            checkSentencePieceNormalizer(root.path("normalizer"), source);
            for (int id = 0; id < table.size(); id++) {
                if (table.types[id] == Vocabulary.TYPE_NORMAL && SentencePieceTokenizer.byteOfPiece(table.pieces[id]) >= 0) {
                    table.types[id] = Vocabulary.TYPE_BYTE;
                }
            }
            return new Vocabulary("llama", null, List.of(table.pieces), scoresFromMerges(table, merges), table.types,
                    merges, ids.bos, ids.eos, ids.eot, unknownId, ids.addBos, addsSpmPrefix(root), source);
        }
        ByteLevelSplits splits = new ByteLevelSplits();
        splits.collect(root.path("pre_tokenizer"), source);
        PreTokenizer.ofRegexes("tokenizer.json", splits.regexes, source); // a pattern Java cannot compile fails here, not later
        // NOTE: an NFC normalizer (Qwen2) is not applied, as llama.cpp's GGUF conversion drops it:
        // text already in NFC, nearly all text, tokenizes the same.
        checkByteLevelNormalizer(root.path("normalizer"), source);
        return new Vocabulary("gpt2", null, List.of(table.pieces), null, table.types, merges,
                ids.bos, ids.eos, ids.eot, unknownId, ids.addBos, splits.addPrefixSpace, source,
                List.copyOf(splits.regexes), model.path("ignore_merges").asBoolean(false));
    }

    private static JsonNode parse(Path path) {
        try {
            return JSON.readTree(path.toFile());
        } catch (JacksonException e) {
            throw new ModelFormatException(path.toString(), "is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    /** Pieces and types by id, from model.vocab plus added_tokens. */
    private record TokenTable(String[] pieces, int[] types, Map<String, Integer> ids) {
        static TokenTable of(JsonNode vocab, JsonNode added, String source) {
            if (!vocab.isObject()) {
                throw new ModelFormatException(source, "model.vocab is not an object of piece -> id");
            }
            int addedCount = added.isArray() ? added.size() : 0;
            // NOTE: ids must be dense: the largest allowed id is bounded by the entries present,
            // so a hostile id never sizes an allocation.
            long bound = (long) vocab.size() + addedCount;
            Map<String, Integer> ids = HashMap.newHashMap(vocab.size() + addedCount);
            Map<Integer, String> byId = new HashMap<>();
            Map<Integer, Integer> typeById = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                int id = checkedId(e.getValue(), bound, "model.vocab[\"" + e.getKey() + "\"]", source);
                byId.put(id, e.getKey());
                ids.put(e.getKey(), id);
            }
            for (int i = 0; i < addedCount; i++) {
                JsonNode token = added.get(i);
                String content = token.path("content").asText(null);
                if (content == null) {
                    throw new ModelFormatException(source, "added_tokens[" + i + "] has no content");
                }
                int id = checkedId(token.path("id"), bound, "added_tokens[" + i + "].id", source);
                byId.put(id, content);
                ids.put(content, id);
                typeById.put(id, token.path("special").asBoolean(false) ? Vocabulary.TYPE_CONTROL : Vocabulary.TYPE_USER_DEFINED);
            }
            int size = byId.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
            if (size == 0) {
                throw new ModelFormatException(source, "model.vocab is empty");
            }
            String[] pieces = new String[size];
            int[] types = new int[size];
            for (int id = 0; id < size; id++) {
                String piece = byId.get(id);
                // NOTE: a hole in the ids becomes an unused placeholder rather than an error.
                pieces[id] = piece != null ? piece : "[lathe:unused:" + id + "]";
                types[id] = piece == null ? Vocabulary.TYPE_UNUSED : typeById.getOrDefault(id, Vocabulary.TYPE_NORMAL);
            }
            return new TokenTable(pieces, types, ids);
        }

        private static int checkedId(JsonNode node, long bound, String what, String source) {
            if (!node.canConvertToInt() || node.asInt() < 0 || node.asInt() >= bound) {
                throw new ModelFormatException(source, what + " is " + node + ", expected a token id in 0.." + (bound - 1));
            }
            return node.asInt();
        }

        int size() {
            return pieces.length;
        }

        int idOf(String piece) {
            Integer id = ids.get(piece);
            return id == null ? -1 : id;
        }
    }

    /** Merges as "left right", from either "a b" strings or ["a", "b"] pairs. */
    private static List<String> readMerges(JsonNode merges, String source) {
        if (merges.isMissingNode() || merges.isNull()) {
            return List.of();
        }
        if (!merges.isArray()) {
            throw new ModelFormatException(source, "model.merges is not an array");
        }
        List<String> out = new ArrayList<>(merges.size());
        for (int i = 0; i < merges.size(); i++) {
            JsonNode m = merges.get(i);
            if (m.isTextual() && m.asText().indexOf(' ') > 0) {
                out.add(m.asText());
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                out.add(m.get(0).asText() + " " + m.get(1).asText());
            } else {
                throw new ModelFormatException(source, "model.merges[" + i + "] is " + m
                        + ", expected \"left right\" or [\"left\", \"right\"]");
            }
        }
        return out;
    }

    private record SpecialIds(int bos, int eos, int eot, boolean addBos) {
    }

    private static SpecialIds specialIds(JsonNode root, JsonNode config, TokenTable table, String source) {
        int bos = -1;
        int eos = -1;
        Boolean addBos = null;
        if (config != null) {
            bos = tokenIdOf(config.path("bos_token"), table, "tokenizer_config.json bos_token", source);
            eos = tokenIdOf(config.path("eos_token"), table, "tokenizer_config.json eos_token", source);
            if (config.path("add_bos_token").isBoolean()) {
                addBos = config.path("add_bos_token").asBoolean();
            }
        }
        // The post-processor's template says which special token leads a single sequence.
        int templateBos = templateLeadingToken(root.path("post_processor"), table);
        if (bos < 0) {
            bos = templateBos >= 0 ? templateBos : table.idOf("<s>");
        }
        if (eos < 0) {
            eos = table.idOf("</s>");
        }
        if (addBos == null) {
            addBos = templateBos >= 0 && templateBos == bos;
        }
        int eot = EndOfTurnToken.find(List.of(table.pieces), table.types, eos);
        return new SpecialIds(bos, eos, eot, addBos && bos >= 0);
    }

    /** A token given as "text" or {"content": "text"}; -1 when absent or null. */
    private static int tokenIdOf(JsonNode node, TokenTable table, String what, String source) {
        String text = node.isTextual() ? node.asText() : node.path("content").isTextual() ? node.path("content").asText() : null;
        if (text == null) {
            return -1;
        }
        int id = table.idOf(text);
        if (id < 0) {
            throw new ModelFormatException(source, what + " '" + text + "' is not in the vocabulary");
        }
        return id;
    }

    private static int templateLeadingToken(JsonNode postProcessor, TokenTable table) {
        if (postProcessor.path("type").asText("").equals("Sequence")) {
            for (JsonNode p : postProcessor.path("processors")) {
                int id = templateLeadingToken(p, table);
                if (id >= 0) {
                    return id;
                }
            }
            return -1;
        }
        JsonNode first = postProcessor.path("single").path(0);
        return first.has("SpecialToken") ? table.idOf(first.path("SpecialToken").path("id").asText()) : -1;
    }

    private static boolean looksLikeSentencePiece(JsonNode root) {
        return mentionsType(root.path("pre_tokenizer"), "Metaspace") || mentionsType(root.path("decoder"), "Metaspace")
                || addsSpmPrefix(root);
    }

    private static boolean addsSpmPrefix(JsonNode root) {
        for (JsonNode n : flatten(root.path("normalizer"), "normalizers")) {
            if (n.path("type").asText().equals("Prepend") && n.path("prepend").asText().equals("\u2581")) {
                return true;
            }
        }
        for (JsonNode p : flatten(root.path("pre_tokenizer"), "pretokenizers")) {
            if (p.path("type").asText().equals("Metaspace")) {
                String scheme = p.path("prepend_scheme").asText(p.path("add_prefix_space").asBoolean(true) ? "always" : "never");
                return !scheme.equals("never");
            }
        }
        return false;
    }

    /** Whether a pre_tokenizer or decoder, or a member of its Sequence, has this type. */
    private static boolean mentionsType(JsonNode node, String type) {
        for (JsonNode n : flatten(node, node.has("pretokenizers") ? "pretokenizers" : "decoders")) {
            if (n.path("type").asText().equals(type)) {
                return true;
            }
        }
        return false;
    }

    /** A component and, for a Sequence, its members (one level, as tokenizer.json nests them). */
    private static List<JsonNode> flatten(JsonNode node, String membersField) {
        if (node.isMissingNode() || node.isNull()) {
            return List.of();
        }
        if (node.path("type").asText().equals("Sequence")) {
            List<JsonNode> members = new ArrayList<>();
            node.path(membersField).forEach(members::add);
            return members;
        }
        return List.of(node);
    }

    /** A byte-level pre_tokenizer as the regexes of its splits, in order, and ByteLevel's prefix flag. */
    private static final class ByteLevelSplits {
        final List<String> regexes = new ArrayList<>();
        boolean addPrefixSpace;

        void collect(JsonNode pre, String source) {
            if (pre.isMissingNode() || pre.isNull()) {
                return;
            }
            String type = pre.path("type").asText("");
            switch (type) {
                case "Sequence" -> {
                    for (JsonNode member : pre.path("pretokenizers")) {
                        collect(member, source);
                    }
                }
                case "ByteLevel" -> {
                    if (pre.path("use_regex").asBoolean(true)) {
                        regexes.add(PreTokenizer.GPT2_BYTE_LEVEL);
                    }
                    addPrefixSpace |= pre.path("add_prefix_space").asBoolean(false);
                }
                case "Digits" -> regexes.add(pre.path("individual_digits").asBoolean(false) ? "\\p{N}" : "\\p{N}+");
                case "Split" -> regexes.add(splitRegex(pre, source));
                default -> throw new ModelFormatException(source, "pre_tokenizer type '" + type
                        + "' is not supported for byte-level BPE; Lathe supports Sequence, Split, ByteLevel and Digits");
            }
        }

        private static String splitRegex(JsonNode split, String source) {
            String behavior = split.path("behavior").asText("");
            boolean invert = split.path("invert").asBoolean(false);
            if (!behavior.equals("Isolated") || invert) {
                throw new ModelFormatException(source, "pre_tokenizer Split with behavior '" + behavior + "'"
                        + (invert ? " and invert" : "") + " is not supported; Lathe supports Isolated splits");
            }
            JsonNode pattern = split.path("pattern");
            if (pattern.path("Regex").isTextual()) {
                return pattern.path("Regex").asText();
            }
            if (pattern.path("String").isTextual()) {
                return Pattern.quote(pattern.path("String").asText());
            }
            throw new ModelFormatException(source, "pre_tokenizer Split has no Regex or String pattern: " + pattern);
        }
    }

    /** Only the normalizer steps the SentencePiece path reproduces: the ▁ prefix and " " -> "▁". */
    private static void checkSentencePieceNormalizer(JsonNode normalizer, String source) {
        for (JsonNode n : flatten(normalizer, "normalizers")) {
            String type = n.path("type").asText("");
            boolean ok = switch (type) {
                case "Prepend" -> n.path("prepend").asText().equals("\u2581");
                case "Replace" -> n.path("pattern").path("String").asText().equals(" ") && n.path("content").asText().equals("\u2581");
                default -> false;
            };
            if (!ok) {
                throw new ModelFormatException(source, "normalizer step " + n + " is not supported for a SentencePiece-style"
                        + " tokenizer; Lathe supports Prepend(\"\u2581\") and Replace(\" \", \"\u2581\")");
            }
        }
    }

    private static void checkByteLevelNormalizer(JsonNode normalizer, String source) {
        for (JsonNode n : flatten(normalizer, "normalizers")) {
            String type = n.path("type").asText("");
            if (!type.equals("NFC")) {
                throw new ModelFormatException(source, "normalizer type '" + type + "' is not supported for byte-level BPE");
            }
        }
    }

    /**
     * NOTE: a piece produced by merges scores minus its best merge rank, so earlier merges
     * score higher, as SentencePiece scores do; pieces no merge produces score below every merge.
     */
    private static float[] scoresFromMerges(TokenTable table, List<String> merges) {
        float[] scores = new float[table.size()];
        Arrays.fill(scores, -(float) merges.size());
        for (int rank = merges.size() - 1; rank >= 0; rank--) {
            int id = table.idOf(merges.get(rank).replace(" ", ""));
            if (id >= 0) {
                scores[id] = -rank;
            }
        }
        return scores;
    }
}
