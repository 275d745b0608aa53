package dev.lathe.core.tokenizer;

import dev.lathe.core.io.ModelFormatException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A Llama 3-style byte-level tokenizer over a small hand-made vocabulary. */
class ByteLevelBpeTokenizerTest {
    static final List<String> MERGES = List.of("Ġ t", "h e", "Ġt he", "1 2", "12 3", "Ġ Ġ", "w o", "wo r");

    /** 256 byte tokens (id = byte), the merge results, a whole-word token no merge makes, specials. */
    static Vocabulary llama3Style(String pre) {
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(GptByteMapping.charOf(b)));
        }
        for (String merge : MERGES) {
            tokens.add(merge.replace(" ", ""));
        }
        tokens.add("Ġworld");          // reachable only through ignore_merges
        tokens.add("<|begin_of_text|>");
        tokens.add("<|end_of_text|>");
        tokens.add("<|eot_id|>");
        tokens.add("<tool>");          // user-defined: split out even without parseSpecial
        int n = tokens.size();
        int[] types = new int[n];
        Arrays.fill(types, Vocabulary.TYPE_NORMAL);
        types[n - 4] = types[n - 3] = types[n - 2] = Vocabulary.TYPE_CONTROL;
        types[n - 1] = Vocabulary.TYPE_USER_DEFINED;
        return new Vocabulary("gpt2", pre, tokens, null, types, MERGES, n - 4, n - 3, n - 2, -1, true, false, "hand-made");
    }

    static int id(Vocabulary v, String piece) {
        int id = v.tokens().indexOf(piece);
        assertTrue(id >= 0, piece);
        return id;
    }

    @Test
    void mergesByRankWithinLlama3Words() {
        Vocabulary v = llama3Style("llama-bpe");
        Tokenizer t = Tokenizers.create(v);
        assertEquals("byte-level BPE (llama-bpe)", t.describe());
        // llama-bpe splits " the", " ", "123", "4"; merges give Ġthe, Ġ, 123, 4
        assertArrayEquals(new int[]{id(v, "Ġthe"), ' ', id(v, "123"), '4'}, t.encode(" the 1234"));
        assertEquals(" the 1234", t.decode(t.encode(" the 1234")));
    }

    @Test
    void ignoreMergesKeepsAWholeWordToken() {
        Vocabulary v = llama3Style("llama-bpe");
        assertArrayEquals(new int[]{id(v, "Ġworld")}, Tokenizers.create(v).encode(" world"));
        // gpt-2 does not ignore merges: " world" merges as far as the list allows
        Vocabulary gpt2 = llama3Style("gpt-2");
        assertArrayEquals(new int[]{id(gpt2, "Ġ"), id(gpt2, "wor"), 'l', 'd'}, Tokenizers.create(gpt2).encode(" world"));
    }

    @Test
    void specialTokensOnlyWhenParsingSpecial() {
        Vocabulary v = llama3Style("llama-bpe");
        Tokenizer t = Tokenizers.create(v);
        int bos = v.bosId();
        int eot = v.eotId();
        assertArrayEquals(new int[]{bos, 'h', 'i', eot}, t.encode("<|begin_of_text|>hi<|eot_id|>", false, true));
        int[] literal = t.encode("<|eot_id|>", false, false);
        assertTrue(literal.length > 1 && Arrays.stream(literal).noneMatch(x -> x == eot), Arrays.toString(literal));
        assertArrayEquals(new int[]{bos, 'h', 'i'}, t.encode("hi", true, false));
        // user-defined tokens are split out either way
        assertArrayEquals(new int[]{'a', id(v, "<tool>"), 'b'}, t.encode("a<tool>b"));
        assertEquals("a<tool>b", t.decode(t.encode("a<tool>b")));
        assertArrayEquals(new int[]{v.eosId(), eot}, t.stopIds());
        assertTrue(t.isControl(eot));
        assertEquals("hi", t.decode(new int[]{bos, 'h', 'i', eot}), "control tokens print nothing");
    }

    @Test
    void streamingDecodeHoldsBackSplitCharacters() {
        Tokenizer t = Tokenizers.create(llama3Style("llama-bpe"));
        int[] ids = t.encode("a😀€");
        assertEquals(1 + 4 + 3, ids.length, "every byte is its own token here");
        TokenTextDecoder decoder = new TokenTextDecoder(t);
        List<String> emitted = new ArrayList<>();
        for (int id : ids) {
            emitted.add(decoder.next(id));
        }
        assertEquals(List.of("a", "", "", "", "😀", "", "", "€"), emitted);
        assertEquals("", decoder.flush());
        // a cut-off character becomes U+FFFD at the end
        TokenTextDecoder cut = new TokenTextDecoder(t);
        assertEquals("", cut.next(0xF0) + cut.next(0x9F));
        assertEquals("\uFFFD", cut.flush());
    }

    @Test
    void idsOutsideTheVocabularyAreRejectedClearly() {
        Tokenizer t = Tokenizers.create(llama3Style("llama-bpe"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.decodeBytes(t.vocabSize()));
        assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> t.isControl(-1));
    }

    @Test
    void unknownPreTokenizerIsAnError() {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizers.create(llama3Style("no-such-pre")));
        assertTrue(e.getMessage().startsWith("hand-made: ") && e.getMessage().contains("no-such-pre"), e.getMessage());
    }

    @Test
    void unknownModelIsAnError() {
        Vocabulary v = llama3Style("gpt-2");
        Vocabulary bert = new Vocabulary("bert", null, v.tokens(), null, v.tokenTypes(), v.merges(), -1, -1, -1, -1,
                false, false, "bert.gguf");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizers.create(bert));
        assertTrue(e.getMessage().startsWith("bert.gguf: ") && e.getMessage().contains("'bert'"), e.getMessage());
    }

    @Test
    void outOfRangeSpecialIdIsAnError() {
        Vocabulary v = llama3Style("gpt-2");
        Vocabulary broken = new Vocabulary("gpt2", "gpt-2", v.tokens(), null, v.tokenTypes(), v.merges(),
                v.size() + 5, -1, -1, -1, true, false, "broken.gguf");
        assertThrows(ModelFormatException.class, () -> Tokenizers.create(broken));
    }
}
