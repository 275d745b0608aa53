package dev.lathe.core.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * llama.cpp's vocabularies rewritten as Hugging Face tokenizer.json files must tokenize like the
 * GGUF originals, on llama.cpp's test strings and on random text: this runs the tokenizer.json
 * paths (merge ranks for SentencePiece, HF's ByteLevel pre-tokenizer) against the vectors.
 */
class TokenizerJsonParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A SentencePiece vocabulary as HF writes one: merges listed by the score of the piece they
     * make, as transformers' converter does.
     */
    private static Path writeSentencePieceJson(Vocabulary spm, Path dir) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model").put("type", "BPE").put("unk_token", "<unk>").put("byte_fallback", true);
        ObjectNode vocab = model.putObject("vocab");
        Map<String, Integer> ids = new HashMap<>();
        for (int id = 0; id < spm.size(); id++) {
            vocab.put(spm.tokens().get(id), id);
            ids.put(spm.tokens().get(id), id);
        }
        record Merge(String left, String right, float score, int leftId) {
        }
        List<Merge> merges = new ArrayList<>();
        for (int id = 0; id < spm.size(); id++) {
            String piece = spm.tokens().get(id);
            if (spm.tokenType(id) != Vocabulary.TYPE_NORMAL) {
                continue;
            }
            for (int cut = 1; cut < piece.length(); cut++) {
                if (Character.isLowSurrogate(piece.charAt(cut))) {
                    continue;
                }
                Integer left = ids.get(piece.substring(0, cut));
                Integer right = ids.get(piece.substring(cut));
                if (left != null && right != null) {
                    merges.add(new Merge(piece.substring(0, cut), piece.substring(cut), spm.scores()[id], left));
                }
            }
        }
        merges.sort(Comparator.comparingDouble((Merge m) -> -m.score).thenComparingInt(Merge::leftId));
        ArrayNode mergeArray = model.putArray("merges");
        merges.forEach(m -> mergeArray.addArray().add(m.left).add(m.right));
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < 3; id++) {
            added.addObject().put("id", id).put("content", spm.tokens().get(id)).put("special", true);
        }
        ArrayNode normalizers = root.putObject("normalizer").put("type", "Sequence").putArray("normalizers");
        normalizers.addObject().put("type", "Prepend").put("prepend", "\u2581");
        ObjectNode replace = normalizers.addObject().put("type", "Replace").put("content", "\u2581");
        replace.putObject("pattern").put("String", " ");
        Path file = dir.resolve("tokenizer.json");
        JSON.writeValue(file.toFile(), root);
        return file;
    }

    private static void assertSameEncodings(Tokenizer expected, Tokenizer actual, String vectors, String seedName) throws IOException {
        String input = Files.readString(SharedData.require("tokenizers/" + vectors));
        for (String text : input.split("\n__ggml_vocab_test__\n")) {
            assertArrayEquals(expected.encode(text), actual.encode(text), text);
        }
        Random random = TestRandom.create(seedName);
        for (int i = 0; i < 300; i++) {
            String text = TokenizerRoundTripTest.randomText(random, 30) + " Hello world, it's a tokenizer";
            assertArrayEquals(expected.encode(text), actual.encode(text), text);
        }
    }

    @Test
    void mergeRanksReproduceScoreOrder(@TempDir Path dir) throws IOException {
        Vocabulary gguf = GgufVocabularyTest.vocabulary("tokenizers/ggml-vocab-llama-spm.gguf");
        Tokenizer byScore = Tokenizers.create(gguf);
        Tokenizer byRank = Tokenizers.create(TokenizerJsonReader.read(writeSentencePieceJson(gguf, dir), null));
        assertSameEncodings(byScore, byRank, "ggml-vocab-llama-spm.gguf.inp", "mergeRanksReproduceScoreOrder");
    }

    /** GPT-2 as its own tokenizer.json has it: a ByteLevel pre-tokenizer with GPT-2's regex. */
    @Test
    void byteLevelPreTokenizerReproducesGpt2(@TempDir Path dir) throws IOException {
        Vocabulary gguf = GgufVocabularyTest.vocabulary("tokenizers/ggml-vocab-gpt-2.gguf");
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model").put("type", "BPE");
        ObjectNode vocab = model.putObject("vocab");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < gguf.size(); id++) {
            if (gguf.tokenType(id) == Vocabulary.TYPE_CONTROL) {
                added.addObject().put("id", id).put("content", gguf.tokens().get(id)).put("special", true);
            } else {
                vocab.put(gguf.tokens().get(id), id);
            }
        }
        ArrayNode merges = model.putArray("merges");
        gguf.merges().forEach(merges::add);
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", true);
        root.putObject("decoder").put("type", "ByteLevel");
        Path file = dir.resolve("tokenizer.json");
        JSON.writeValue(file.toFile(), root);
        Vocabulary fromJson = TokenizerJsonReader.read(file, null);
        assertSameEncodings(Tokenizers.create(gguf), Tokenizers.create(fromJson), "ggml-vocab-gpt-2.gguf.inp",
                "byteLevelPreTokenizerReproducesGpt2");
    }
}
