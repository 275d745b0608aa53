package dev.lathe.core.tokenizer;

import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufWriter;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * llama.cpp's tokenizer test vectors (test-tokenizer-0): each string of X.gguf.inp, encoded with
 * add_special = false and parse_special = false, must give line i of X.gguf.out (ids without
 * BOS). For SentencePiece this includes the dummy-prefix space: "Hello world" -> ▁Hello ▁world.
 */
class GgufVocabularyTest {
    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";

    static Vocabulary vocabulary(String sharedPath) {
        try (GgufFile gguf = GgufFile.open(SharedData.require(sharedPath))) {
            return GgufVocabularyReader.read(gguf.metadata());
        }
    }

    private static void checkVectors(String name) throws IOException {
        Tokenizer tokenizer = Tokenizers.create(vocabulary("tokenizers/" + name));
        String input = Files.readString(SharedData.require("tokenizers/" + name + ".inp"));
        List<String> expected = Files.readAllLines(SharedData.require("tokenizers/" + name + ".out"));
        // The .inp ends with a separator, so the split leaves one empty string after the last case.
        String[] texts = input.split(SEPARATOR, -1);
        assertEquals(expected.size() + 1, texts.length, "one expected line per test string");
        assertEquals("", texts[texts.length - 1]);
        for (int i = 0; i < expected.size(); i++) {
            int[] ids = tokenizer.encode(texts[i], false, false);
            String line = Arrays.stream(ids).mapToObj(id -> " " + id).collect(Collectors.joining());
            assertEquals(expected.get(i), line, name + " case " + i + ": " + texts[i]);
            assertEquals(texts[i], tokenizer.decode(ids), name + " case " + i + " decodes back");
        }
    }

    @Test
    void llamaSentencePieceVectors() throws IOException {
        checkVectors("ggml-vocab-llama-spm.gguf");
    }

    @Test
    void gpt2ByteLevelVectors() throws IOException {
        checkVectors("ggml-vocab-gpt-2.gguf");
    }

    @Test
    void metadataBecomesTheVocabulary() {
        Vocabulary spm = vocabulary("tokenizers/ggml-vocab-llama-spm.gguf");
        assertEquals("llama", spm.model());
        assertEquals(32000, spm.size());
        assertTrue(spm.addBos() && spm.addSpacePrefix());
        Tokenizer llama = Tokenizers.create(spm);
        assertEquals(1, llama.bosId());
        assertArrayEquals(new int[]{2}, llama.stopIds());
        assertArrayEquals(new int[]{1, 15043, 3186}, llama.encode("Hello world", true, false));
        assertArrayEquals(new int[]{1, 15043, 2, 3186}, llama.encode("Hello</s>world", true, true),
                "</s> parsed as EOS, and the text after a special token gets the prefix space again");

        Vocabulary gpt2 = vocabulary("tokenizers/ggml-vocab-gpt-2.gguf");
        assertEquals("gpt2", gpt2.model());
        assertEquals("gpt-2", gpt2.pre());
        assertEquals(50257, gpt2.size());
        Tokenizer bpe = Tokenizers.create(gpt2);
        assertEquals("byte-level BPE (gpt-2)", bpe.describe());
        assertArrayEquals(new int[]{15496, 995, 50256}, bpe.encode("Hello world<|endoftext|>", false, true));
        assertArrayEquals(new int[]{15496}, bpe.encode("Hello", true, false), "GPT-2 prompts do not start with BOS");
    }

    @Test
    void randomTextRoundTripsThroughRealVocabularies() {
        TokenizerRoundTripTest.checkRoundTrips(Tokenizers.create(vocabulary("tokenizers/ggml-vocab-llama-spm.gguf")), "llama-spm", 300);
        TokenizerRoundTripTest.checkRoundTrips(Tokenizers.create(vocabulary("tokenizers/ggml-vocab-gpt-2.gguf")), "gpt-2", 300);
    }

    /** stories260K's GGUF carries the same vocabulary as tok512.bin: both must tokenize alike. */
    @Test
    void stories260KGgufAgreesWithTokenizerBin() {
        Tokenizer fromGguf = Tokenizers.create(vocabulary("models/stories260K/stories260K-f32.gguf"));
        Tokenizer fromBin = Tokenizers.create(Llama2cTokenizerReader.read(SharedData.require("models/stories260K/tok512.bin")));
        Random random = TestRandom.create("stories260KGgufAgreesWithTokenizerBin");
        for (int i = 0; i < 300; i++) {
            String text = TokenizerRoundTripTest.randomText(random, 30) + " Once upon a time, Lily's dog";
            assertArrayEquals(fromBin.encode(text, true, false), fromGguf.encode(text, true, false), text);
        }
    }

    // ---- broken metadata ----

    private static GgufWriter smallVocabulary(String model, String pre) {
        GgufWriter w = new GgufWriter()
                .putString("tokenizer.ggml.model", model)
                .putStringArray("tokenizer.ggml.tokens", List.of("a", "b", "ab"))
                .putInt32Array("tokenizer.ggml.token_type", new int[]{1, 1, 1})
                .putStringArray("tokenizer.ggml.merges", List.of("a b"));
        return pre == null ? w : w.putString("tokenizer.ggml.pre", pre);
    }

    private static Tokenizer open(Path path) {
        try (GgufFile gguf = GgufFile.open(path)) {
            return Tokenizers.create(GgufVocabularyReader.read(gguf.metadata()));
        }
    }

    private static void assertRejected(Path path, String expectedInMessage) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> open(path));
        assertTrue(e.getMessage().startsWith(path.toString()) && e.getMessage().contains(expectedInMessage), e.getMessage());
    }

    @Test
    void unknownModelAndPreTokenizerNamesAreErrors(@TempDir Path dir) {
        Path bert = dir.resolve("bert.gguf");
        smallVocabulary("bert", null).write(bert);
        assertRejected(bert, "'bert'");
        Path klingon = dir.resolve("klingon.gguf");
        smallVocabulary("gpt2", "klingon").write(klingon);
        assertRejected(klingon, "klingon");
        Path ok = dir.resolve("ok.gguf");
        smallVocabulary("gpt2", "gpt-2").write(ok);
        assertArrayEquals(new int[]{2, 0}, open(ok).encode("aba"));
    }

    @Test
    void inconsistentArraysAndIdsAreErrors(@TempDir Path dir) {
        Path scores = dir.resolve("scores.gguf");
        smallVocabulary("llama", null).putFloat32Array("tokenizer.ggml.scores", new float[]{0f}).write(scores);
        assertRejected(scores, "tokenizer.ggml.scores");
        Path bos = dir.resolve("bos.gguf");
        smallVocabulary("gpt2", "gpt-2").putUint32("tokenizer.ggml.bos_token_id", 7).write(bos);
        assertRejected(bos, "bos_token_id");
        Path type = dir.resolve("type.gguf");
        smallVocabulary("gpt2", "gpt-2").putInt32Array("tokenizer.ggml.token_type", new int[]{1, 9, 1}).write(type);
        assertRejected(type, "type 9");
    }

    @Test
    void endOfTurnFoundByTextWhenTheKeyIsAbsent(@TempDir Path dir) {
        Path chat = dir.resolve("chat.gguf");
        new GgufWriter()
                .putString("tokenizer.ggml.model", "gpt2")
                .putString("tokenizer.ggml.pre", "qwen2")
                .putStringArray("tokenizer.ggml.tokens", List.of("a", "b", "<|endoftext|>", "<|im_start|>", "<|im_end|>"))
                .putInt32Array("tokenizer.ggml.token_type", new int[]{1, 1, 3, 3, 3})
                .putStringArray("tokenizer.ggml.merges", List.of("a b"))
                .putUint32("tokenizer.ggml.eos_token_id", 2)
                .write(chat);
        Tokenizer tokenizer = open(chat);
        assertArrayEquals(new int[]{2, 4}, tokenizer.stopIds());
        assertArrayEquals(new int[]{3, 0, 4}, tokenizer.encode("<|im_start|>a<|im_end|>", false, true));
    }
}
