package dev.lathe.core.tokenizer;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Llama2cTokenizerTest {

    private static Tokenizer tok512() {
        return Tokenizers.create(Llama2cTokenizerReader.read(SharedData.require("models/stories260K/tok512.bin")));
    }

    /**
     * Lines like {@code 'Hello world' [346, 306, ...]}, Python repr of the string then the ids.
     *
     * <p>NOTE: tok512.model's normalizer keeps SentencePiece's default remove_extra_whitespaces
     * (leading/trailing spaces dropped, runs collapsed), which tokenizer.bin does not record and
     * which llama2.c and llama.cpp never apply (Llama 2's own model turns it off). Lathe follows
     * them, so the reference text is normalised that way before encoding.
     */
    @Test
    void tok512MatchesSentencePieceEncodings() throws IOException {
        Tokenizer tokenizer = tok512();
        List<String> lines = Files.readAllLines(
                SharedData.require("models/stories260K/reference/tok512_sentencepiece_encodings.txt"));
        int checked = 0;
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            int bracket = line.lastIndexOf(" [");
            String quoted = line.substring(0, bracket);
            String text = quoted.substring(1, quoted.length() - 1).replace("\\'", "'");
            int[] expected = Arrays.stream(line.substring(bracket + 2, line.length() - 1).split(","))
                    .map(String::trim).mapToInt(Integer::parseInt).toArray();
            String normalized = text.strip().replaceAll(" {2,}", " ");
            assertArrayEquals(expected, tokenizer.encode(normalized), "encoding of '" + normalized + "'");
            assertEquals(normalized, tokenizer.decode(expected), "decoding of '" + normalized + "'");
            checked++;
        }
        assertTrue(checked >= 4, "expected at least 4 reference lines, found " + checked);
    }

    @Test
    void tok512VocabularyShape() {
        Vocabulary v = Llama2cTokenizerReader.read(SharedData.require("models/stories260K/tok512.bin"));
        assertEquals(512, v.size());
        assertEquals("<s>", v.tokens().get(1));
        assertEquals("</s>", v.tokens().get(2));
        assertEquals("<0x41>", v.tokens().get(3 + 0x41));
        assertEquals(Vocabulary.TYPE_BYTE, v.tokenType(3 + 0x41));
        assertEquals("\u2581t", v.tokens().get(259));
        Tokenizer tokenizer = Tokenizers.create(v);
        assertArrayEquals(new int[]{2}, tokenizer.stopIds());
        int[] withBos = tokenizer.encode("Hello world", true, false);
        assertEquals(1, withBos[0]);
        assertEquals("Hello world", tokenizer.decode(withBos));
    }

    @Test
    void byteFallbackForCharactersOutsideTheVocabulary() {
        Tokenizer tokenizer = tok512();
        // "龍" is not a tok512 piece: its three UTF-8 bytes E9 BE 8D become byte tokens.
        int[] ids = tokenizer.encode("龍");
        assertEquals(3 + 0xE9, ids[ids.length - 3]);
        assertEquals(3 + 0xBE, ids[ids.length - 2]);
        assertEquals(3 + 0x8D, ids[ids.length - 1]);
        assertEquals("龍", tokenizer.decode(ids));
    }

    @Test
    void controlTokensInTextOnlyWhenParsingSpecial() {
        Tokenizer tokenizer = tok512();
        int[] literal = tokenizer.encode("a</s>", false, false);
        assertTrue(Arrays.stream(literal).noneMatch(id -> id == 2), Arrays.toString(literal));
        int[] parsed = tokenizer.encode("a</s>", false, true);
        assertEquals(2, parsed[parsed.length - 1]);
        assertArrayEquals(new int[]{0}, tokenizer.encode("<unk>", false, true), "the unknown token parses as special too");
    }

    // ---- hostile and broken files ----

    private static byte[] tokenizerBin(int maxTokenLength, Object... scoreLengthBytes) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer header = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(maxTokenLength);
        out.writeBytes(header.array());
        for (int i = 0; i < scoreLengthBytes.length; i += 3) {
            ByteBuffer entry = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
                    .putFloat((Float) scoreLengthBytes[i]).putInt((Integer) scoreLengthBytes[i + 1]);
            out.writeBytes(entry.array());
            out.writeBytes((byte[]) scoreLengthBytes[i + 2]);
        }
        return out.toByteArray();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void minimalFileReads(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.bin");
        Files.write(file, tokenizerBin(5, 0f, 5, utf8("<unk>"), 0f, 3, utf8("<s>"), 0f, 4, utf8("</s>"), -1f, 2, utf8(" a")));
        Vocabulary v = Llama2cTokenizerReader.read(file);
        assertEquals(List.of("<unk>", "<s>", "</s>", "\u2581a"), v.tokens());
    }

    @Test
    void absurdLengthIsRejectedBeforeAllocating(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.bin");
        Files.write(file, tokenizerBin(-1, 0f, Integer.MAX_VALUE, utf8("x")));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizerReader.read(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("length " + Integer.MAX_VALUE),
                e.getMessage());
    }

    @Test
    void negativeLengthIsRejected(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.bin");
        Files.write(file, tokenizerBin(8, 0f, -5, new byte[0]));
        assertThrows(ModelFormatException.class, () -> Llama2cTokenizerReader.read(file));
    }

    @Test
    void truncatedFilesAreRejected(@TempDir Path dir) throws IOException {
        byte[] whole = Files.readAllBytes(SharedData.require("models/stories260K/tok512.bin"));
        for (int cut : new int[]{0, 3, 4 + 5, 4 + 8 + 2, whole.length - 1}) {
            Path file = dir.resolve("cut" + cut + ".bin");
            Files.write(file, Arrays.copyOf(whole, cut));
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizerReader.read(file),
                    "cut at " + cut);
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        }
    }
}
