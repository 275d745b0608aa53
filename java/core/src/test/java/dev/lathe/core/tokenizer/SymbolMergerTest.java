package dev.lathe.core.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class SymbolMergerTest {

    private static int[] merge(String word, Map<String, Double> scores) {
        return SymbolMerger.merge(word, SymbolMerger.codePointBoundaries(word),
                (w, start, mid, end) -> scores.getOrDefault(w.substring(start, end), Double.NaN));
    }

    @Test
    void equalScoresMergeLeftmostFirst() {
        assertArrayEquals(new int[]{0, 2, 3}, merge("aaa", Map.of("aa", 1.0)));
        assertArrayEquals(new int[]{0, 4}, merge("aaaa", Map.of("aa", 1.0, "aaaa", 0.5)));
    }

    @Test
    void higherScoreWinsAndStalePairsAreSkipped() {
        // "bc" beats "ab"; once b is taken, the queued "ab" pair is stale and "a" stays alone
        assertArrayEquals(new int[]{0, 1, 3}, merge("abc", Map.of("ab", 1.0, "bc", 2.0)));
        // after "bc" forms, "abc" becomes possible
        assertArrayEquals(new int[]{0, 3}, merge("abc", Map.of("ab", 1.0, "bc", 2.0, "abc", 0.0)));
    }

    @Test
    void surrogatePairsStayWhole() {
        assertArrayEquals(new int[]{0, 2, 3}, SymbolMerger.codePointBoundaries("😀x"));
        assertArrayEquals(new int[]{0, 3}, merge("😀x", Map.of("😀x", 1.0)));
        assertArrayEquals(new int[]{0}, SymbolMerger.codePointBoundaries(""));
    }
}
