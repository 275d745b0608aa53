package dev.lathe.core.backend;

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
}
