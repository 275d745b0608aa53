package dev.lathe.core.tokenizer;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Expected splits worked out by hand from the HF / llama.cpp regex definitions of each family. */
class PreTokenizerTest {

    private static List<String> split(String pre, String text) {
        List<String> words = PreTokenizer.forName(pre, "test").split(text);
        assertEquals(text, String.join("", words), "the words of a split must give back the text");
        return words;
    }

    @Test
    void gpt2() {
        assertEquals(List.of("Hello", " world"), split("gpt-2", "Hello world"));
        assertEquals(List.of("I", "'ve", " '", "told"), split("gpt-2", "I've 'told"));
        assertEquals(List.of("a", " ", " b"), split("gpt-2", "a  b"));
        assertEquals(List.of("x", "   "), split("gpt-2", "x   "));
        assertEquals(List.of("123456", " 7"), split("gpt-2", "123456 7"));
        assertEquals(List.of("Hello", "\n", "\n", "world"), split("gpt-2", "Hello\n\nworld"));
        // GPT-2's contractions are lower case only
        assertEquals(List.of("I", "'", "VE"), split("gpt-2", "I'VE"));
        assertEquals(List.of("нещо", " на"), split("gpt-2", "нещо на"));
    }

    @Test
    void unicodeWhitespaceCountsAsWhitespace() {
        // U+3000 and U+00A0 are White_Space, so \s+(?!\S) backs off before the word as for ASCII
        // spaces; with Java's ASCII-only default \s they would glue onto the next word instead.
        assertEquals(List.of(" ", "\u3000", "x"), split("gpt-2", " \u3000x"));
        assertEquals(List.of("a", "\u00A0", " b"), split("gpt-2", "a\u00A0 b"));
    }

    @Test
    void llama3() {
        assertEquals(List.of("I", "'VE", " ", "123", "456", "7", " ok"), split("llama-bpe", "I'VE 1234567 ok"));
        assertEquals(List.of("a", "\n\n", " ", " b"), split("llama-bpe", "a\n\n  b"));
        assertEquals(List.of("hello", "!!\n"), split("llama-bpe", "hello!!\n"));
        assertEquals(List.of("x", "   "), split("llama-bpe", "x   "));
        assertEquals(List.of("\tfoo"), split("llama-bpe", "\tfoo"));
    }

    @Test
    void qwen2SplitsDigitsOneByOne() {
        assertEquals(List.of("1", "2", " ab", "'s"), split("qwen2", "12 ab's"));
    }

    @Test
    void deepseekCoder() {
        assertEquals(List.of("ab", " ", "1", "2", "\n"), split("deepseek-coder", "ab 12\n"));
    }

    @Test
    void deepseekLlm() {
        assertEquals(List.of("Hello", ",", " ", "世界", " ", "123", "\n"), split("deepseek-llm", "Hello, 世界 123\n"));
    }

    @Test
    void falconGroupsDigitsByThree() {
        assertEquals(List.of("x", "=", "123", "45", "!"), split("falcon", "x=12345!"));
    }

    @Test
    void starcoderAndRefactIsolateDigits() {
        assertEquals(List.of("a", " ", "4", "2"), split("starcoder", "a 42"));
        assertEquals(List.of("a", " ", "4", "2"), split("refact", "a 42"));
        assertEquals(List.of("a", " 42"), split("mpt", "a 42"));
    }

    @Test
    void tekkenAndGpt4oSplitCamelCase() {
        assertEquals(List.of("Hello", "World", " foo", "1", "2", "3", "4"), split("tekken", "HelloWorld foo1234"));
        assertEquals(List.of("Hello", "World's", " foo", "123", "4"), split("gpt-4o", "HelloWorld's foo1234"));
        // the capital run is greedy: an acronym glued to a word stays one piece
        assertEquals(List.of("HTMLParser", " x"), split("tekken", "HTMLParser x"));
    }

    @Test
    void defaultSplitsPunctuationFirst() {
        assertEquals(List.of("Hello", ",", " world", "!!"), split("default", "Hello, world!!"));
        assertEquals(List.of("123", "4"), split("default", "1234"));
    }

    @Test
    void everySupportedFamilyIsKnownAndCompiles() {
        for (String name : List.of("default", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder",
                "falcon", "starcoder", "mpt", "refact")) {
            assertTrue(PreTokenizer.knownNames().contains(name), name);
        }
        for (String name : PreTokenizer.knownNames()) {
            assertEquals("Hello, world 123!\n", String.join("", split(name, "Hello, world 123!\n")), name);
        }
    }

    @Test
    void unknownNameIsAnErrorNamingTheSource() {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> PreTokenizer.forName("klingon", "model.gguf"));
        assertTrue(e.getMessage().startsWith("model.gguf: ") && e.getMessage().contains("klingon"), e.getMessage());
    }

    /** Llama 3's tokenizer.json regex, as HF writes it, must split like the built-in llama-bpe list. */
    @Test
    void tokenizerJsonLlama3RegexAgreesWithBuiltIn() {
        String hf = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        PreTokenizer fromJson = PreTokenizer.ofRegexes("tokenizer.json", List.of(hf), "tokenizer.json");
        PreTokenizer builtIn = PreTokenizer.forName("llama-bpe", "test");
        Random random = TestRandom.create("tokenizerJsonLlama3RegexAgreesWithBuiltIn");
        String alphabet = "aZé 1\n\t\r'sSdD!?.,-世😀\u00A0\u3000";
        for (int i = 0; i < 500; i++) {
            StringBuilder sb = new StringBuilder();
            int length = random.nextInt(30);
            for (int j = 0; j < length; j++) {
                sb.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, random.nextInt(alphabet.codePointCount(0, alphabet.length())))));
            }
            String text = sb.toString();
            assertEquals(builtIn.split(text), fromJson.split(text), "split of " + text.replace("\n", "\\n"));
        }
    }
}
