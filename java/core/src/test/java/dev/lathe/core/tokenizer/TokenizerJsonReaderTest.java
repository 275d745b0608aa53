package dev.lathe.core.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenizerJsonReaderTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    @TempDir
    Path dir;

    private Path write(String name, Object tree) throws IOException {
        Path file = dir.resolve(name);
        JSON.writeValue(file.toFile(), tree);
        return file;
    }

    private static ObjectNode addedToken(int id, String content, boolean special) {
        return JSON.createObjectNode().put("id", id).put("content", content).put("special", special);
    }

    /** A Llama 2-style tokenizer.json: byte fallback, ▁ pieces, Prepend + Replace normalizer. */
    static ObjectNode spmStyle() {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").put("unk_token", "<unk>").put("byte_fallback", true);
        ObjectNode vocab = model.putObject("vocab");
        vocab.put("<unk>", 0).put("<s>", 1).put("</s>", 2);
        for (int b = 0; b < 256; b++) {
            vocab.put(String.format("<0x%02X>", b), 3 + b);
        }
        String[] pieces = {"▁", "a", "b", "c", "ab", "▁a", "▁ab"};
        for (int i = 0; i < pieces.length; i++) {
            vocab.put(pieces[i], 259 + i);
        }
        // "a b" outranks "▁ a": HF merges "ab" first, and ("▁", "ab") is no merge, so "▁ab"
        // never forms from " ab" although it is a piece. Scores alone would form it.
        model.putArray("merges").add("a b").add("▁ a").add("▁a b");
        ArrayNode added = root.putArray("added_tokens");
        added.add(addedToken(0, "<unk>", true)).add(addedToken(1, "<s>", true)).add(addedToken(2, "</s>", true));
        ObjectNode normalizer = root.putObject("normalizer").put("type", "Sequence");
        ArrayNode normalizers = normalizer.putArray("normalizers");
        normalizers.addObject().put("type", "Prepend").put("prepend", "▁");
        normalizers.addObject().put("type", "Replace").putObject("pattern").put("String", " ");
        ((ObjectNode) normalizers.get(1)).put("content", "▁");
        root.putNull("pre_tokenizer");
        return root;
    }

    @Test
    void sentencePieceStyleFollowsMergeRanks() throws IOException {
        ObjectNode config = JSON.createObjectNode().put("bos_token", "<s>").put("add_bos_token", true);
        config.putObject("eos_token").put("content", "</s>");
        Vocabulary v = TokenizerJsonReader.read(write("tokenizer.json", spmStyle()), write("tokenizer_config.json", config));
        assertEquals("llama", v.model());
        assertTrue(v.addSpacePrefix() && v.addBos());
        assertEquals(1, v.bosId());
        assertEquals(2, v.eosId());
        assertEquals(0, v.unknownId());
        assertEquals(Vocabulary.TYPE_BYTE, v.tokenType(3 + 'A'));
        assertTrue(v.scores()[259 + 4] > v.scores()[259 + 5], "an earlier merge scores higher");
        Tokenizer t = Tokenizers.create(v);
        int space = 259;
        int ab = 259 + 4;
        int c = 259 + 3;
        assertArrayEquals(new int[]{space, ab, space, c}, t.encode("ab c"));
        assertArrayEquals(new int[]{1, 259 + 5, 3 + 0xC3, 3 + 0xA9}, t.encode("aé", true, false));
        assertEquals("aé", t.decode(t.encode("aé", true, false)));
    }

    /** {@code vocabulary} as a byte-level tokenizer.json without pre_tokenizer. */
    private static ObjectNode byteLevelJson(Vocabulary vocabulary) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model").put("type", "BPE");
        ObjectNode vocab = model.putObject("vocab");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < vocabulary.size(); id++) {
            int type = vocabulary.tokenType(id);
            if (type == Vocabulary.TYPE_NORMAL) {
                vocab.put(vocabulary.tokens().get(id), id);
            } else {
                added.add(addedToken(id, vocabulary.tokens().get(id), type == Vocabulary.TYPE_CONTROL));
            }
        }
        ArrayNode merges = model.putArray("merges");
        vocabulary.merges().forEach(m -> merges.addArray().add(m.split(" ")[0]).add(m.split(" ")[1]));
        root.putObject("decoder").put("type", "ByteLevel");
        return root;
    }

    @Test
    void digitsAndByteLevelPreTokenizersBecomeRegexes() throws IOException {
        ObjectNode root = byteLevelJson(ByteLevelBpeTokenizerTest.llama3Style("gpt-2"));
        ObjectNode pre = root.putObject("pre_tokenizer").put("type", "Sequence");
        ArrayNode pres = pre.putArray("pretokenizers");
        pres.addObject().put("type", "Digits").put("individual_digits", true);
        pres.addObject().put("type", "ByteLevel").put("add_prefix_space", true).put("use_regex", true);
        Vocabulary v = TokenizerJsonReader.read(write("tokenizer.json", root), null);
        assertEquals(List.of("\\p{N}", PreTokenizer.GPT2_BYTE_LEVEL), v.preSplitRegexes());
        assertTrue(v.addSpacePrefix());
        // " ab 12": digits split off one by one, then GPT-2's split, each byte its own token here
        assertArrayEquals(new int[]{' ', 'a', 'b', ' ', '1', '2'}, Tokenizers.create(v).encode("ab 12"));
    }

    /** The hand-made Llama 3-style vocabulary written as a tokenizer.json must tokenize the same. */
    @Test
    void byteLevelMatchesTheBuiltInLlama3Tokenizer() throws IOException {
        Vocabulary handMade = ByteLevelBpeTokenizerTest.llama3Style("llama-bpe");
        ObjectNode root = byteLevelJson(handMade);
        ((ObjectNode) root.get("model")).put("ignore_merges", true);
        ObjectNode pre = root.putObject("pre_tokenizer").put("type", "Sequence");
        ArrayNode pres = pre.putArray("pretokenizers");
        ObjectNode split = pres.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false);
        split.putObject("pattern").put("Regex", LLAMA3_REGEX);
        pres.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", false);
        ObjectNode post = root.putObject("post_processor").put("type", "TemplateProcessing");
        post.putArray("single").addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 0);
        ((ArrayNode) post.get("single")).addObject().putObject("Sequence").put("id", "A").put("type_id", 0);

        Vocabulary fromJson = TokenizerJsonReader.read(write("tokenizer.json", root), null);
        assertEquals("gpt2", fromJson.model());
        assertEquals(handMade.bosId(), fromJson.bosId());
        assertTrue(fromJson.addBos());
        assertEquals(handMade.eotId(), fromJson.eotId());
        Tokenizer expected = Tokenizers.create(handMade);
        Tokenizer actual = Tokenizers.create(fromJson);
        Random random = TestRandom.create("byteLevelMatchesTheBuiltInLlama3Tokenizer");
        for (int i = 0; i < 300; i++) {
            String text = TokenizerRoundTripTest.randomText(random, 30) + " the world 12345 <|eot_id|>";
            assertArrayEquals(expected.encode(text, true, true), actual.encode(text, true, true), text);
        }
    }

    // ---- malformed files ----

    private void assertRejected(ObjectNode root, String expectedInMessage) throws IOException {
        Path file = write("bad.json", root);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TokenizerJsonReader.read(file, null));
        assertTrue(e.getMessage().startsWith(file.toString()) && e.getMessage().contains(expectedInMessage), e.getMessage());
    }

    private void assertRejected(Consumer<ObjectNode> breakIt, String expectedInMessage) throws IOException {
        ObjectNode root = spmStyle();
        breakIt.accept(root);
        assertRejected(root, expectedInMessage);
    }

    @Test
    void notJson() throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"model\": {\"type\": \"BPE\", ");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TokenizerJsonReader.read(file, null));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void malformedContents() throws IOException {
        assertRejected(r -> ((ObjectNode) r.get("model")).put("type", "Unigram"), "Unigram");
        assertRejected(r -> ((ObjectNode) r.get("model")).put("continuing_subword_prefix", "##"), "##");
        assertRejected(r -> ((ArrayNode) r.get("normalizer").get("normalizers")).addObject().put("type", "NFKC"), "NFKC");
        assertRejected(r -> r.remove("model"), "\"model\"");
        assertRejected(r -> ((ArrayNode) r.get("model").get("merges")).add(42), "merges[3]");
        assertRejected(r -> ((ObjectNode) r.get("model").get("vocab")).put("zzz", Integer.MAX_VALUE), "zzz");
        assertRejected(r -> ((ObjectNode) r.get("model").get("vocab")).put("neg", -3), "neg");
        assertRejected(r -> {
            ((ObjectNode) r.get("model")).put("byte_fallback", false);
            r.remove("normalizer");
        }, "neither");
    }

    @Test
    void unsupportedPreTokenizers() throws IOException {
        ObjectNode root = spmStyle();
        ((ObjectNode) root.get("model")).put("byte_fallback", false);
        root.remove("normalizer");
        root.putObject("decoder").put("type", "ByteLevel");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        assertRejected(root, "Whitespace");
        ObjectNode split = root.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Removed");
        split.putObject("pattern").put("Regex", "\\s+");
        assertRejected(root, "Removed");
        root.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Isolated")
                .putObject("pattern").put("Regex", "(unclosed");
        assertRejected(root, "(unclosed");
    }

    @Test
    void bosTokenMissingFromVocabulary() throws IOException {
        ObjectNode config = JSON.createObjectNode().put("bos_token", "<|nope|>");
        Path json = write("tokenizer.json", spmStyle());
        Path configFile = write("tokenizer_config.json", config);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TokenizerJsonReader.read(json, configFile));
        assertTrue(e.getMessage().contains("<|nope|>"), e.getMessage());
    }
}
