package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.Backend;
import dev.lathe.core.backend.BackendUnavailableException;
import dev.lathe.core.backend.Backends;
import org.junit.jupiter.api.Test;

/**
 * {@code Backends.open("cuda")} reaches this module through ServiceLoader, and on a machine
 * without a usable GPU (CI) fails with the reason rather than falling back; {@code auto} then
 * runs on the CPU.
 */
class CudaBackendProviderTest {
    private static boolean gpuUsable() {
        try (Backend b = Backends.open("cuda", 1)) {
            return b.name().equals("cuda");
        } catch (BackendUnavailableException e) {
            return false;
        }
    }

    @Test
    void cudaEitherStartsOrSaysWhyNot() {
        try (Backend b = Backends.open("cuda", 1)) {
            assertTrue(b.describe().startsWith("cuda ("), b.describe());
        } catch (BackendUnavailableException e) {
            String m = e.getMessage();
            assertTrue(m.startsWith("the CUDA backend cannot start: "), m);
            assertTrue(m.contains("driver") || m.contains("device") || m.contains("liblathe_cuda.so"), m);
        }
    }

    @Test
    void autoPicksCudaOnlyWhenItStarts() {
        boolean gpu = gpuUsable();
        try (Backend b = Backends.open("auto", 1)) {
            assertTrue(b.name().equals(gpu ? "cuda" : "cpu"), b.name());
        }
        assertFalse(new CudaBackendProvider().name().isEmpty());
    }
}
