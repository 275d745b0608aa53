package dev.lathe.core.concurrent;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A parallel for over an index range. The range is cut into {@code threads} contiguous slices of
 * near-equal size; the caller runs the first slice itself and waits for the others, which run on
 * a process-wide set of worker threads (one per processor beyond the caller's).
 *
 * <p>NOTE: the workers spin for a while after each task instead of parking at once. A decode step
 * is a chain of matmuls of 50-500 microseconds each; a parked worker must be woken by the
 * scheduler, which on a virtual machine (an idle vCPU halts, and waking it takes the host) costs
 * about as long as the work itself. Measured here on 2 vCPUs: with parking workers a 2-thread
 * matmul of a 3 MB Q8_0 matrix was no faster than 1 thread (300 vs 300 us); with spinning workers
 * it is ~1.9x faster. A worker parks after {@link #SPIN_NANOS} without work, so an idle process
 * burns no CPU.
 *
 * <p>NOTE: a waiting thread (the caller for its workers, an idle worker for the next task) spins
 * only for {@link #YIELD_AFTER_NANOS}, then yields its CPU between checks. On a machine with more
 * runnable threads than CPUs the thread it waits for may be the one it keeps off the CPU: pure
 * spinning made `lathe bench` decode of the 200M Q4_0 model at 2 threads fall to 2.8-6.5 tok/s
 * while other builds loaded the 2-vCPU machine (load average 5-6); with the yield, in the same
 * interleaved runs, 23.4-25.1 tok/s. Yielding when nothing else is runnable returns at once, so a
 * quiet machine keeps the spinning's latency.
 */
public final class Parallel {
    private Parallel() {
    }

    /** Work on the half-open index range {@code [start, end)}. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    /** How long an idle worker spins before it parks. */
    static final long SPIN_NANOS = 2_000_000;
    /** After this long spinning, a waiting thread (caller or worker) yields its CPU between checks. */
    static final long YIELD_AFTER_NANOS = 50_000;

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
        SpinningPool pool = SpinningPool.INSTANCE;
        // The spinning workers serve one caller at a time; a concurrent (or nested) caller, or one
        // asking for more slices than there are workers, takes the plain executor instead.
        if (slices - 1 <= pool.workers.length && !pool.lock.isHeldByCurrentThread()
                && !Thread.currentThread().getName().startsWith(SpinningPool.NAME) && pool.lock.tryLock()) {
            try {
                pool.run(n, slices, body);
            } finally {
                pool.lock.unlock();
            }
        } else {
            runOnExecutor(n, slices, body);
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

    private static void rethrow(Throwable t) {
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

    /** Workers that spin between tasks; one task (a set of slices) at a time. */
    private static final class SpinningPool {
        static final String NAME = "lathe-parallel";
        static final SpinningPool INSTANCE = new SpinningPool(Math.max(1, Runtime.getRuntime().availableProcessors() - 1));

        final ReentrantLock lock = new ReentrantLock();
        final Worker[] workers;

        SpinningPool(int size) {
            workers = new Worker[size];
            for (int i = 0; i < size; i++) {
                workers[i] = new Worker(NAME + "-" + i);
                workers[i].start();
            }
        }

        void run(int n, int slices, RangeBody body) {
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int s = 1; s < slices; s++) {
                workers[s - 1].post(body, sliceStart(n, slices, s), sliceStart(n, slices, s + 1), failure);
            }
            try {
                body.run(0, sliceStart(n, slices, 1));
            } catch (Throwable t) {
                record(failure, t);
            }
            for (int s = 1; s < slices; s++) {
                workers[s - 1].awaitDone();
            }
            rethrow(failure.get());
        }
    }

    private static final class Worker extends Thread {
        // Written by the caller before posting; read by the worker after it sees the new task.
        private RangeBody body;
        private int start;
        private int end;
        private AtomicReference<Throwable> failure;
        private volatile long posted;    // task number last posted
        private volatile long completed; // task number last finished
        private volatile boolean parked;

        Worker(String name) {
            super(name);
            setDaemon(true);
        }

        void post(RangeBody body, int start, int end, AtomicReference<Throwable> failure) {
            this.body = body;
            this.start = start;
            this.end = end;
            this.failure = failure;
            posted = posted + 1; // volatile write publishes the fields above
            if (parked) {
                LockSupport.unpark(this);
            }
        }

        void awaitDone() {
            long task = posted;
            long start = System.nanoTime();
            while (completed != task) {
                if (System.nanoTime() - start < YIELD_AFTER_NANOS) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield(); // the worker may be waiting for this very CPU
                }
            }
        }

        @Override
        public void run() {
            long seen = 0;
            while (true) {
                long idleSince = System.nanoTime();
                while (posted == seen) {
                    long idle = System.nanoTime() - idleSince;
                    if (idle < YIELD_AFTER_NANOS) {
                        Thread.onSpinWait();
                        continue;
                    }
                    if (idle < SPIN_NANOS) {
                        Thread.yield(); // still ready within microseconds, but lets a runnable thread have this CPU
                        continue;
                    }
                    parked = true;
                    if (posted == seen) { // re-check after announcing: post() either sees parked or we see the task
                        LockSupport.park(this);
                    }
                    parked = false;
                    idleSince = System.nanoTime();
                }
                seen = posted;
                try {
                    body.run(start, end);
                } catch (Throwable t) {
                    record(failure, t);
                }
                body = null;
                completed = seen;
            }
        }
    }

    // ---- the fallback for concurrent callers ----

    private static final class Executor {
        static final ExecutorService WORKERS = Executors.newCachedThreadPool(runnable -> {
            Thread thread = new Thread(runnable, "lathe-parallel-extra");
            thread.setDaemon(true);
            return thread;
        });
    }

    private static void runOnExecutor(int n, int slices, RangeBody body) {
        CountDownLatch done = new CountDownLatch(slices - 1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int s = 1; s < slices; s++) {
            int start = sliceStart(n, slices, s);
            int end = sliceStart(n, slices, s + 1);
            Executor.WORKERS.execute(() -> {
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
        rethrow(failure.get());
    }
}
