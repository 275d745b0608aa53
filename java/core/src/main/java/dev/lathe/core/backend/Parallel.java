package dev.lathe.core.backend;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A parallel for over an index range, on one process-wide pool of daemon threads. The range is
 * cut into {@code threads} contiguous slices of near-equal size; the caller runs the first slice
 * itself and waits for the others. Meant for coarse work (a whole matrix-vector product), not for
 * fine-grained tasks: each call costs a few microseconds of hand-off.
 */
public final class Parallel {
    private Parallel() {
    }

    /** Work on the half-open index range {@code [start, end)}. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    // NOTE: one fixed pool for the process (sized to the machine), created on first use; the
    // threads are daemons so a forgotten pool never keeps the JVM alive.
    private static final class Pool {
        static final ExecutorService WORKERS = Executors.newFixedThreadPool(
                Math.max(1, Runtime.getRuntime().availableProcessors() - 1),
                runnable -> {
                    Thread thread = new Thread(runnable, "lathe-parallel");
                    thread.setDaemon(true);
                    return thread;
                });
    }

    /**
     * Runs {@code body} over {@code [0, n)} split into {@code threads} slices ({@code threads} is
     * clamped to {@code [1, n]}); returns when every slice is done. An exception from any slice
     * is rethrown here (the first one; later ones are added as suppressed).
     */
    public static void forRange(int n, int threads, RangeBody body) {
        if (n < 0) {
            throw new IllegalArgumentException("negative range " + n);
        }
        int slices = Math.max(1, Math.min(threads, n));
        if (slices == 1) {
            body.run(0, n);
            return;
        }
        CountDownLatch done = new CountDownLatch(slices - 1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int s = 1; s < slices; s++) {
            int start = sliceStart(n, slices, s);
            int end = sliceStart(n, slices, s + 1);
            Pool.WORKERS.execute(() -> {
                try {
                    body.run(start, end);
                } catch (Throwable t) {
                    record(failure, t);
                } finally {
                    done.countDown();
                }
            });
        }
        try {
            body.run(0, sliceStart(n, slices, 1));
        } catch (Throwable t) {
            record(failure, t);
        }
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for parallel work", e);
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException e) {
            throw e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
    }

    private static int sliceStart(int n, int slices, int s) {
        return (int) ((long) n * s / slices);
    }

    private static void record(AtomicReference<Throwable> failure, Throwable t) {
        if (!failure.compareAndSet(null, t)) {
            failure.get().addSuppressed(t);
        }
    }
}
