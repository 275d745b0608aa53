package dev.lathe.core.tokenizer;

import dev.lathe.core.testing.SharedData;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * decode(encode(s)) == s on random text mixing scripts, emoji (including ZWJ sequences), CJK and
 * whitespace runs, and streaming through {@link TokenTextDecoder} gives the same text.
 */
class TokenizerRoundTripTest {
    /** Code point ranges to draw from: ASCII, Latin-1, Cyrillic, Khmer, combining marks, CJK, emoji. */
    private static final int[][] RANGES = {
            {0x20, 0x7E}, {0x20, 0x20}, {0x0A, 0x0A}, {0x09, 0x09}, {0xA0, 0xFF}, {0x400, 0x44F},
            {0x1780, 0x17DD}, {0x300, 0x36F}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F600, 0x1F64F},
            {0x1F300, 0x1F5FF}, {0x200D, 0x200D}, {0xFE0F, 0xFE0F}, {0x3000, 0x3002}, {0x10000, 0x1000F},
    };

    static String randomText(Random random, int maxCodePoints) {
        StringBuilder sb = new StringBuilder();
        int n = random.nextInt(maxCodePoints + 1);
        for (int i = 0; i < n; i++) {
            int[] range = RANGES[random.nextInt(RANGES.length)];
            sb.appendCodePoint(range[0] + random.nextInt(range[1] - range[0] + 1));
        }
        return sb.toString();
    }

    static void checkRoundTrips(Tokenizer tokenizer, String name, int cases) {
        Random random = TestRandom.create("round trip " + name);
        for (int i = 0; i < cases; i++) {
            String text = randomText(random, 40);
            int[] ids = tokenizer.encode(text);
            assertEquals(text, tokenizer.decode(ids), name + ": round trip of " + escape(text));
            TokenTextDecoder stream = new TokenTextDecoder(tokenizer, true);
            StringBuilder streamed = new StringBuilder();
            for (int id : ids) {
                String piece = stream.next(id);
                assertTrue(piece.indexOf('\uFFFD') < 0, name + ": streaming emitted a broken character for " + escape(text));
                streamed.append(piece);
            }
            streamed.append(stream.flush());
            assertEquals(text, streamed.toString(), name + ": streamed decode of " + escape(text));
        }
    }

    private static String escape(String s) {
        StringBuilder sb = new StringBuilder("\"");
        s.codePoints().forEach(cp -> sb.append(cp >= 0x20 && cp < 0x7F ? Character.toString(cp) : String.format("\\u{%X}", cp)));
        return sb.append('"').toString();
    }

    @Test
    void sentencePieceWithByteFallback() {
        Tokenizer tok512 = Tokenizers.create(Llama2cTokenizerReader.read(SharedData.require("models/stories260K/tok512.bin")));
        checkRoundTrips(tok512, "tok512", 400);
    }

    @Test
    void byteLevel() {
        checkRoundTrips(Tokenizers.create(ByteLevelBpeTokenizerTest.llama3Style("llama-bpe")), "llama3-style", 400);
        checkRoundTrips(Tokenizers.create(ByteLevelBpeTokenizerTest.llama3Style("deepseek-llm")), "deepseek-llm", 200);
    }

    @Test
    void spaceAfterBosIsDroppedOnceButKeptInAContinuation() {
        Tokenizer tok512 = Tokenizers.create(Llama2cTokenizerReader.read(SharedData.require("models/stories260K/tok512.bin")));
        int[] withBos = tok512.encode("Once upon", true, false);
        TokenTextDecoder generation = new TokenTextDecoder(tok512);
        StringBuilder out = new StringBuilder();
        for (int id : withBos) {
            out.append(generation.next(id));
        }
        assertEquals("Once upon", out.toString(), "llama2.c drops the dummy-prefix space after BOS");
        TokenTextDecoder continuation = new TokenTextDecoder(tok512);
        int[] word = tok512.encode("time");
        StringBuilder cont = new StringBuilder();
        for (int id : word) {
            cont.append(continuation.next(id));
        }
        assertEquals(" time", cont.toString(), "a continuation keeps the space that separates it from the prompt");
    }

    /** The merge loop is O(n log n): a long run of one character must not take quadratic time. */
    @Test
    void longInputsStayFast() {
        Tokenizer tok512 = Tokenizers.create(Llama2cTokenizerReader.read(SharedData.require("models/stories260K/tok512.bin")));
        Tokenizer byteLevel = Tokenizers.create(ByteLevelBpeTokenizerTest.llama3Style("gpt-2"));
        String longWord = "ab".repeat(100_000);
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            assertEquals(longWord, tok512.decode(tok512.encode(longWord)));
            assertEquals(longWord, byteLevel.decode(byteLevel.encode(longWord)));
        });
    }
}
