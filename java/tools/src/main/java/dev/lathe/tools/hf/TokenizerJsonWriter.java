package dev.lathe.tools.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.tokenizer.Vocabulary;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a SentencePiece-style vocabulary (GGUF {@code tokenizer.ggml.model = llama}, or a
 * llama2.c tokenizer.bin) as a Hugging Face {@code tokenizer.json} + {@code tokenizer_config.json}
 * in the shape transformers' LlamaTokenizerFast uses: a BPE model with byte fallback, the
 * Prepend("▁") + Replace(" ", "▁") normalizer, and merges made from the scores the way
 * transformers' SentencePieceExtractor makes them: every split {@code a + b} of a piece into two
 * pieces is a merge, ranked by the merged piece's score (highest first), so merging by rank picks
 * the pair SentencePiece's score rule picks.
 */
// NOTE: byte-level (gpt2) vocabularies are not written: their pre-tokenizer regexes live in
// Lathe's PreTokenizer by name, not as tokenizer.json steps. Such models are exported without a
// tokenizer and run with -z pointing at the original.
public final class TokenizerJsonWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizerJsonWriter() {
    }

    /** True when {@link #write} can write {@code vocabulary}. */
    public static boolean supports(Vocabulary vocabulary) {
        return vocabulary != null && vocabulary.model().equals("llama") && vocabulary.scores() != null;
    }

    public static void write(Vocabulary v, Path directory) {
        if (!supports(v)) {
            throw new IllegalArgumentException("only SentencePiece-style (llama) vocabularies with scores are written as tokenizer.json");
        }
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < v.size(); id++) {
            int type = v.tokenType(id);
            if (type == Vocabulary.TYPE_CONTROL || type == Vocabulary.TYPE_UNKNOWN || type == Vocabulary.TYPE_USER_DEFINED) {
                ObjectNode t = added.addObject();
                t.put("id", id);
                t.put("content", v.tokens().get(id));
                t.put("single_word", false);
                t.put("lstrip", false);
                t.put("rstrip", false);
                t.put("normalized", type == Vocabulary.TYPE_USER_DEFINED);
                t.put("special", type != Vocabulary.TYPE_USER_DEFINED);
            }
        }
        ObjectNode normalizer = root.putObject("normalizer");
        normalizer.put("type", "Sequence");
        ArrayNode steps = normalizer.putArray("normalizers");
        if (v.addSpacePrefix()) {
            steps.addObject().put("type", "Prepend").put("prepend", "\u2581");
        }
        ObjectNode replace = steps.addObject().put("type", "Replace");
        replace.putObject("pattern").put("String", " ");
        replace.put("content", "\u2581");
        root.putNull("pre_tokenizer");
        if (v.addBos() && v.bosId() >= 0) {
            String bos = v.tokens().get(v.bosId());
            ObjectNode post = root.putObject("post_processor");
            post.put("type", "TemplateProcessing");
            ArrayNode single = post.putArray("single");
            single.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
            single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
            ArrayNode pair = post.putArray("pair");
            pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
            pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
            pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 1);
            pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
            ObjectNode special = post.putObject("special_tokens").putObject(bos);
            special.put("id", bos);
            special.putArray("ids").add(v.bosId());
            special.putArray("tokens").add(bos);
        } else {
            root.putNull("post_processor");
        }
        ObjectNode decoder = root.putObject("decoder");
        decoder.put("type", "Sequence");
        ArrayNode decoders = decoder.putArray("decoders");
        ObjectNode space = decoders.addObject().put("type", "Replace");
        space.putObject("pattern").put("String", "\u2581");
        space.put("content", " ");
        decoders.addObject().put("type", "ByteFallback");
        decoders.addObject().put("type", "Fuse");
        if (v.addSpacePrefix()) {
            decoders.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        }
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        if (v.unknownId() >= 0) {
            model.put("unk_token", v.tokens().get(v.unknownId()));
        } else {
            model.putNull("unk_token");
        }
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        for (int id = 0; id < v.size(); id++) {
            vocab.put(v.tokens().get(id), id);
        }
        ArrayNode merges = model.putArray("merges");
        for (String[] m : merges(v)) {
            merges.addArray().add(m[0]).add(m[1]);
        }

        ObjectNode config = JSON.createObjectNode();
        config.put("add_bos_token", v.addBos());
        config.put("add_eos_token", false);
        if (v.bosId() >= 0) {
            config.put("bos_token", v.tokens().get(v.bosId()));
        }
        if (v.eosId() >= 0) {
            config.put("eos_token", v.tokens().get(v.eosId()));
        }
        if (v.unknownId() >= 0) {
            config.put("unk_token", v.tokens().get(v.unknownId()));
        }
        config.put("clean_up_tokenization_spaces", false);
        config.put("legacy", false);
        config.put("tokenizer_class", "LlamaTokenizer");
        try {
            JSON.writeValue(directory.resolve("tokenizer.json").toFile(), root);
            JSON.writerWithDefaultPrettyPrinter().writeValue(directory.resolve("tokenizer_config.json").toFile(), config);
        } catch (IOException e) {
            throw new UncheckedIOException("writing the tokenizer into " + directory, e);
        }
    }

    /** Every split of a mergeable piece into two pieces, by the merged piece's score (highest first), then ids. */
    static List<String[]> merges(Vocabulary v) {
        Map<String, Integer> ids = new HashMap<>();
        for (int id = 0; id < v.size(); id++) {
            ids.putIfAbsent(v.tokens().get(id), id);
        }
        record Merge(String left, String right, int merged, int leftId, int rightId) {
        }
        List<Merge> all = new ArrayList<>();
        for (int id = 0; id < v.size(); id++) {
            int type = v.tokenType(id);
            if (type != Vocabulary.TYPE_NORMAL && type != Vocabulary.TYPE_USER_DEFINED) {
                continue; // SentencePiece never forms control, byte or unknown pieces from text
            }
            String piece = v.tokens().get(id);
            for (int at = piece.offsetByCodePoints(0, 1); at < piece.length(); at = piece.offsetByCodePoints(at, 1)) {
                Integer left = ids.get(piece.substring(0, at));
                Integer right = ids.get(piece.substring(at));
                if (left != null && right != null) {
                    all.add(new Merge(piece.substring(0, at), piece.substring(at), id, left, right));
                }
            }
        }
        float[] scores = v.scores();
        all.sort(Comparator.comparingDouble((Merge m) -> -scores[m.merged()]).thenComparingInt(Merge::merged)
                .thenComparingInt(Merge::leftId).thenComparingInt(Merge::rightId));
        List<String[]> out = new ArrayList<>(all.size());
        for (Merge m : all) {
            out.add(new String[] {m.left(), m.right()});
        }
        return out;
    }
}
