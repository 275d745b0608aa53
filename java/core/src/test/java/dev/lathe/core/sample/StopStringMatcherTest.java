package dev.lathe.core.sample;

import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StopStringMatcherTest {

    private static StopStringMatcher.Step step(String text, String stop) {
        return new StopStringMatcher.Step(text, stop);
    }

    @Test
    void stopStringSplitAcrossPieces() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("</s>"));
        assertEquals(step("Hello ", null), matcher.feed("Hello <"));
        assertEquals(step("", null), matcher.feed("/"));
        assertEquals(step("", "</s>"), matcher.feed("s> and more"));
        assertTrue(matcher.isStopped());
        assertEquals("", matcher.flush());
    }

    @Test
    void heldTextIsReleasedWhenItStopsLookingLikeAStop() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("</s>"));
        assertEquals(step("a ", null), matcher.feed("a </"));
        assertEquals(step("</x", null), matcher.feed("x"));
    }

    @Test
    void overlappingPrefixInOnePiece() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("ab"));
        assertEquals(step("a", "ab"), matcher.feed("aab"));
    }

    @Test
    void overlappingPrefixAcrossPieces() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("ab"));
        assertEquals(step("", null), matcher.feed("a"));
        assertEquals(step("a", null), matcher.feed("a"));
        assertEquals(step("", "ab"), matcher.feed("b"));
    }

    @Test
    void selfOverlappingStopString() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("aab"));
        assertEquals(step("", null), matcher.feed("aa"));
        assertEquals(step("a", null), matcher.feed("a"));
        assertEquals(step("", "aab"), matcher.feed("b"));
    }

    @Test
    void stopAtTheVeryStart() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("###"));
        assertEquals(step("", "###"), matcher.feed("### tail"));
        assertThrows(IllegalStateException.class, () -> matcher.feed("more"));
    }

    @Test
    void noFalseHolds() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("xyz", "\n\n"));
        assertEquals(step("hello world", null), matcher.feed("hello world"));
        assertEquals(step("abc", null), matcher.feed("abcx"));
        assertEquals(step("xa", null), matcher.feed("a"));
        assertEquals(step("line", null), matcher.feed("line\n"));
        assertEquals(step("\nnext", null), matcher.feed("next"));
    }

    @Test
    void flushReturnsHeldText() {
        StopStringMatcher matcher = new StopStringMatcher(List.of("end."));
        assertEquals(step("the ", null), matcher.feed("the en"));
        assertEquals("en", matcher.flush());
        assertEquals("", matcher.flush());
    }

    @Test
    void firstStopToCompleteWins() {
        StopStringMatcher both = new StopStringMatcher(List.of("abc", "b"));
        assertEquals(step("a", "b"), both.feed("abc"));
        StopStringMatcher sameEnd = new StopStringMatcher(List.of("c", "abc"));
        assertEquals(step("x", "abc"), sameEnd.feed("xabc"));
    }

    @Test
    void noStopStringsPassesEverythingThrough() {
        StopStringMatcher matcher = new StopStringMatcher(List.of());
        assertEquals(step("anything", null), matcher.feed("anything"));
        assertEquals(step("", null), matcher.feed(""));
        assertEquals("", matcher.flush());
    }

    @Test
    void invalidStopStringsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new StopStringMatcher(List.of("a", "")));
        assertThrows(IllegalArgumentException.class, () -> new StopStringMatcher(Arrays.asList("a", null)));
        assertThrows(IllegalArgumentException.class, () -> new StopStringMatcher(null));
    }

    /** The whole text's answer, by definition: cut before the stop that ends first (longest on a tie). */
    private static String expectedOutput(String text, List<String> stops) {
        for (int end = 1; end <= text.length(); end++) {
            int bestStart = -1;
            for (String stop : stops) {
                int start = end - stop.length();
                if (start >= 0 && text.startsWith(stop, start) && (bestStart < 0 || start < bestStart)) {
                    bestStart = start;
                }
            }
            if (bestStart >= 0) {
                return text.substring(0, bestStart);
            }
        }
        return text;
    }

    @Test
    void anyChunkingGivesTheWholeTextAnswerAndHoldsOnlyPossibleStops() {
        Random random = TestRandom.create("anyChunkingGivesTheWholeTextAnswerAndHoldsOnlyPossibleStops");
        String alphabet = "abc";
        for (int trial = 0; trial < 3000; trial++) {
            List<String> stops = new ArrayList<>();
            for (int s = 1 + random.nextInt(3); s > 0; s--) {
                stops.add(randomString(random, alphabet, 1 + random.nextInt(4)));
            }
            String text = randomString(random, alphabet, random.nextInt(30));
            StopStringMatcher matcher = new StopStringMatcher(stops);
            StringBuilder emitted = new StringBuilder();
            int fed = 0;
            boolean stopped = false;
            while (fed < text.length() && !stopped) {
                int next = Math.min(text.length(), fed + random.nextInt(5));
                StopStringMatcher.Step step = matcher.feed(text.substring(fed, next));
                fed = next;
                emitted.append(step.text());
                stopped = step.stopped();
                if (!stopped) {
                    String held = text.substring(emitted.length(), fed);
                    assertTrue(held.isEmpty() || stops.stream().anyMatch(stop -> stop.length() > held.length()
                                    && stop.startsWith(held)),
                            "held \"" + held + "\" cannot start any of " + stops);
                } else {
                    assertFalse(step.text().contains(step.stopString()));
                }
            }
            if (!stopped) {
                emitted.append(matcher.flush());
            }
            assertEquals(expectedOutput(text, stops), emitted.toString(), "text " + text + " stops " + stops);
        }
    }

    private static String randomString(Random random, String alphabet, int length) {
        StringBuilder builder = new StringBuilder(length);
        for (int i = 0; i < length; i++) {
            builder.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return builder.toString();
    }

    @Test
    void stepReportsNoStopWhileStreaming() {
        StopStringMatcher.Step step = new StopStringMatcher(List.of("z")).feed("abc");
        assertNull(step.stopString());
        assertFalse(step.stopped());
    }
}
