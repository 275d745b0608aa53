package dev.lathe.core.spec;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class NgramDrafterTest {
    private final NgramDrafter drafter = new NgramDrafter(1, 3);

    @Test
    void proposesTheContinuationOfTheLatestLongestMatch() {
        //                 0  1  2  3  4  5  6  7  8  9
        int[] history = {5, 1, 2, 3, 9, 1, 2, 4, 7, 1, 2};
        // suffix (1, 2) of length 2 (no trigram "7 1 2" earlier): latest earlier match at 5 -> 4, 7, 1
        assertArrayEquals(new int[] {4, 7, 1}, drafter.lookup(history, history.length, 3));
        // the trigram (9, 1, 2) beats the latest bigram
        int[] withTrigram = {9, 1, 2, 3, 8, 1, 2, 4, 9, 1, 2};
        assertArrayEquals(new int[] {3, 8}, drafter.lookup(withTrigram, withTrigram.length, 2));
    }

    @Test
    void stopsAtTheEndOfTheHistoryAndFindsNothingWithoutAMatch() {
        int[] history = {4, 4, 4};
        assertArrayEquals(new int[] {4}, drafter.lookup(history, 3, 5)); // overlapping match, clipped
        assertArrayEquals(new int[0], drafter.lookup(new int[] {1, 2, 3}, 3, 4));
        assertArrayEquals(new int[0], drafter.lookup(new int[] {1}, 1, 4));
    }

    @Test
    void rejectsBadSizes() {
        assertThrows(IllegalArgumentException.class, () -> new NgramDrafter(0, 2));
        assertThrows(IllegalArgumentException.class, () -> new NgramDrafter(3, 2));
    }
}
