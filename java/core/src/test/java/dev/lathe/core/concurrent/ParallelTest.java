package dev.lathe.core.concurrent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelTest {

    @Test
    void everyIndexRunsExactlyOnce() {
        for (int n : new int[] {0, 1, 3, 17, 111, 769}) {
            for (int threads = 1; threads <= 5; threads++) {
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                Parallel.forRange(n, threads, (start, end) -> {
                    for (int i = start; i < end; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits.get(i), "n " + n + " threads " + threads + " index " + i);
                }
            }
        }
    }

    @Test
    void aFailingSliceFailsTheCall() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forRange(100, 4, (start, end) -> {
            if (start > 0) {
                throw new IllegalStateException("slice " + start);
            }
        }));
        assertEquals(2, e.getSuppressed().length, "the other failing slices are attached");
    }

    @Test
    void nestedAndConcurrentCallersEachCoverTheirRangeOnce() throws Exception {
        int n = 1000;
        int callers = 4;
        AtomicIntegerArray[] hits = new AtomicIntegerArray[callers];
        Thread[] threads = new Thread[callers];
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        for (int c = 0; c < callers; c++) {
            hits[c] = new AtomicIntegerArray(n);
            int caller = c;
            threads[c] = new Thread(() -> {
                try {
                    for (int round = 0; round < 200; round++) {
                        // The outer slices each run an inner parallel loop (nested use from the caller and from a worker).
                        Parallel.forRange(n, 2, (start, end) -> Parallel.forRange(end - start, 2, (s2, e2) -> {
                            for (int i = start + s2; i < start + e2; i++) {
                                hits[caller].incrementAndGet(i);
                            }
                        }));
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            });
            threads[c].start();
        }
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        for (int c = 0; c < callers; c++) {
            for (int i = 0; i < n; i++) {
                assertEquals(200, hits[c].get(i), "caller " + c + " index " + i);
            }
        }
    }
}
