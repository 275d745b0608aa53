package dev.lathe.core.sample;

import java.util.List;

/**
 * Finds stop strings in streamed text, across the boundaries of the pieces it arrives in.
 *
 * <p>Each {@link #feed} returns the text that is safe to show now. Text that could still turn
 * out to be the start of a stop string is held back until the next piece settles it; text that
 * cannot is never held. When a stop string completes, the text before it is returned and the
 * stop string and anything after it are dropped. {@link #flush} returns what is still held when
 * the stream ends without a stop.
 *
 * <p>When several stop strings occur, the one that completes first wins (on a tie, the one
 * starting first, which is the longer). NOTE: "completes first" rather than "starts first" so
 * that the result never depends on how the text was cut into pieces: with stops "abc" and "b",
 * a stream that delivers "ab" must stop at "b" before it can see "abc".
 *
 * <p>Not thread-safe; one per generated sequence.
 */
public final class StopStringMatcher {

    /**
     * What one piece released.
     *
     * @param text       safe to emit now (may be empty)
     * @param stopString the stop string that completed, or null if the stream goes on
     */
    public record Step(String text, String stopString) {
        public boolean stopped() {
            return stopString != null;
        }
    }

    private final List<String> stopStrings;
    private final int longestStop;
    private String held = "";
    private boolean stopped;

    /** @param stopStrings non-empty strings; an empty list passes every piece straight through */
    public StopStringMatcher(List<String> stopStrings) {
        if (stopStrings == null) {
            throw new IllegalArgumentException("stopStrings is null");
        }
        int longest = 0;
        for (int i = 0; i < stopStrings.size(); i++) {
            String stop = stopStrings.get(i);
            if (stop == null || stop.isEmpty()) {
                throw new IllegalArgumentException("stopStrings[" + i + "] is "
                        + (stop == null ? "null" : "empty") + ": expected a non-empty string");
            }
            longest = Math.max(longest, stop.length());
        }
        this.stopStrings = List.copyOf(stopStrings);
        this.longestStop = longest;
    }

    /** Whether a stop string has completed; no more pieces may be fed after that. */
    public boolean isStopped() {
        return stopped;
    }

    /** Takes the next piece of text; see the class comment for what comes back. */
    public Step feed(String piece) {
        if (stopped) {
            throw new IllegalStateException("a stop string already completed; the stream has ended");
        }
        if (piece == null) {
            throw new IllegalArgumentException("piece is null");
        }
        String pending = held.isEmpty() ? piece : held + piece;

        String firstStop = null;
        int firstStart = -1;
        int firstEnd = Integer.MAX_VALUE;
        for (String stop : stopStrings) {
            int start = pending.indexOf(stop);
            if (start >= 0) {
                int end = start + stop.length();
                if (end < firstEnd || (end == firstEnd && start < firstStart)) {
                    firstStop = stop;
                    firstStart = start;
                    firstEnd = end;
                }
            }
        }
        if (firstStop != null) {
            stopped = true;
            held = "";
            return new Step(pending.substring(0, firstStart), firstStop);
        }

        int holdFrom = startOfPossibleStop(pending);
        held = pending.substring(holdFrom);
        return new Step(pending.substring(0, holdFrom), null);
    }

    /** The text still held back; call when the stream ends. Empty after a stop. */
    public String flush() {
        String rest = held;
        held = "";
        return rest;
    }

    /** The start of the longest suffix of {@code text} that is a proper prefix of a stop string. */
    private int startOfPossibleStop(String text) {
        int length = text.length();
        for (int start = Math.max(0, length - longestStop + 1); start < length; start++) {
            int suffixLength = length - start;
            for (String stop : stopStrings) {
                if (stop.length() > suffixLength && stop.regionMatches(0, text, start, suffixLength)) {
                    return start;
                }
            }
        }
        return length;
    }
}
