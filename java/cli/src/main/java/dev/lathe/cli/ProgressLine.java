package dev.lathe.cli;

import java.io.PrintStream;

/**
 * A one-line progress bar on stderr, redrawn in place: {@code [#####.....] 12/100 done | 345.6
 * tokens/s | ETA 1m23s}. Redraws at most five times a second; {@link #finish} ends the line.
 */
final class ProgressLine {
    private static final int WIDTH = 30;
    private static final long REDRAW_NANOS = 200_000_000L;

    private final PrintStream err;
    private final int total;
    private final long start = System.nanoTime();
    private long lastDraw;
    private boolean drawn;

    ProgressLine(PrintStream err, int total) {
        this.err = err;
        this.total = total;
    }

    void update(int done, long tokens, boolean force) {
        long now = System.nanoTime();
        if (!force && now - lastDraw < REDRAW_NANOS) {
            return;
        }
        lastDraw = now;
        drawn = true;
        double seconds = (now - start) / 1e9;
        int filled = total == 0 ? WIDTH : (int) ((long) WIDTH * done / total);
        String eta = done == 0 || done >= total ? "--" : duration(seconds / done * (total - done));
        err.printf("\r[%s%s] %d/%d done | %.1f tokens/s | ETA %s   ", "#".repeat(filled), ".".repeat(WIDTH - filled),
                done, total, seconds > 0 ? tokens / seconds : 0.0, eta);
        err.flush();
    }

    void finish(int done, long tokens) {
        update(done, tokens, true);
        if (drawn) {
            err.println();
        }
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s / 60 % 60)
                : s >= 60 ? String.format("%dm%02ds", s / 60, s % 60) : s + "s";
    }
}
