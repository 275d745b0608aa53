package dev.lathe.core.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/**
 * The BPE merge loop shared by both tokenizers: a word starts as a chain of symbols (one per
 * character), and the adjacent pair with the best score is merged until no pair can merge. A
 * priority queue holds the candidate pairs; a merge invalidates the queued pairs that touched
 * either side, which are skipped lazily when popped (llama.cpp's approach), so a word of n
 * symbols costs O(n log n) rather than rescanning all pairs after every merge.
 */
final class SymbolMerger {

    /** How good merging two adjacent symbols is. */
    @FunctionalInterface
    interface PairScore {
        /**
         * The score of merging {@code word[start, mid)} with {@code word[mid, end)}: higher
         * merges first; {@code Double.NaN} when the pair does not merge.
         */
        double score(String word, int start, int mid, int end);
    }

    private record Candidate(int left, int right, int leftLength, int rightLength, double score) {
    }

    private SymbolMerger() {
    }

    /**
     * Merges the symbols of {@code word}, whose initial boundaries are {@code boundaries}
     * (ascending offsets, starting with 0 and ending with {@code word.length()}), and returns the
     * boundaries after merging.
     */
    static int[] merge(String word, int[] boundaries, PairScore pairScore) {
        int n = boundaries.length - 1;
        if (n <= 1) {
            return boundaries;
        }
        int[] start = new int[n];
        int[] length = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            start[i] = boundaries[i];
            length[i] = boundaries[i + 1] - boundaries[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // NOTE: ties go to the leftmost pair, as in SentencePiece and llama.cpp.
        PriorityQueue<Candidate> queue = new PriorityQueue<>((a, b) -> {
            int byScore = Double.compare(b.score, a.score);
            return byScore != 0 ? byScore : Integer.compare(a.left, b.left);
        });
        for (int i = 1; i < n; i++) {
            offer(queue, word, start, length, i - 1, i, pairScore);
        }
        while (!queue.isEmpty()) {
            Candidate c = queue.poll();
            if (length[c.left] != c.leftLength || length[c.right] != c.rightLength || next[c.left] != c.right) {
                continue; // stale: one side has merged with something else since this was queued
            }
            length[c.left] += length[c.right];
            length[c.right] = 0;
            next[c.left] = next[c.right];
            if (next[c.right] >= 0) {
                prev[next[c.right]] = c.left;
            }
            if (prev[c.left] >= 0) {
                offer(queue, word, start, length, prev[c.left], c.left, pairScore);
            }
            if (next[c.left] >= 0) {
                offer(queue, word, start, length, c.left, next[c.left], pairScore);
            }
        }
        List<Integer> merged = new ArrayList<>();
        for (int i = 0; i >= 0; i = next[i]) {
            merged.add(start[i]);
        }
        int[] result = new int[merged.size() + 1];
        for (int i = 0; i < merged.size(); i++) {
            result[i] = merged.get(i);
        }
        result[merged.size()] = word.length();
        return result;
    }

    private static void offer(PriorityQueue<Candidate> queue, String word, int[] start, int[] length,
                              int left, int right, PairScore pairScore) {
        int mid = start[right];
        double score = pairScore.score(word, start[left], mid, mid + length[right]);
        if (!Double.isNaN(score)) {
            queue.add(new Candidate(left, right, length[left], length[right], score));
        }
    }

    /** Boundaries of the code points of {@code word} (a surrogate pair is one symbol). */
    static int[] codePointBoundaries(String word) {
        int[] boundaries = new int[word.codePointCount(0, word.length()) + 1];
        int offset = 0;
        for (int i = 0; i < boundaries.length - 1; i++) {
            boundaries[i] = offset;
            offset += Character.charCount(word.codePointAt(offset));
        }
        boundaries[boundaries.length - 1] = word.length();
        return boundaries;
    }
}
