package dev.lathe.core.backend;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A fixed pool of worker threads that splits an index range into one contiguous chunk per
 * thread; the calling thread runs the first chunk itself. Small ranges run inline.
 */
public final class Parallel implements AutoCloseable {

    /** Work on indices {@code [start, end)}. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    private final int threads;
    private final ExecutorService workers;

    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.workers = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, runnable -> {
            Thread t = new Thread(runnable, "lathe-cpu-worker");
            t.setDaemon(true);
            return t;
        });
    }

    public int threads() {
        return threads;
    }

    /**
     * Runs {@code body} over {@code [0, n)} split across the threads. Chunks are multiples of
     * {@code grain} (except the last) so callers can keep rows of a block together.
     */
    public void forRange(int n, int grain, RangeBody body) {
        int chunks = Math.min(threads, (n + grain - 1) / grain);
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int perChunk = ((n + chunks - 1) / chunks + grain - 1) / grain * grain;
        CountDownLatch done = new CountDownLatch(chunks - 1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int c = 1; c < chunks; c++) {
            int start = Math.min(n, c * perChunk);
            int end = Math.min(n, start + perChunk);
            workers.execute(() -> {
                try {
                    body.run(start, end);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.countDown();
                }
            });
        }
        try {
            body.run(0, Math.min(n, perChunk));
        } catch (Throwable t) {
            failure.compareAndSet(null, t);
        }
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for worker threads", e);
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error err) {
            throw err;
        }
    }

    @Override
    public void close() {
        if (workers != null) {
            workers.shutdownNow();
        }
    }
}
