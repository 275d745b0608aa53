package dev.lathe.cuda;

import dev.lathe.core.backend.Backend;
import dev.lathe.core.backend.BackendProvider;
import dev.lathe.core.backend.BackendUnavailableException;

/**
 * Registers the CUDA backend with {@link dev.lathe.core.backend.Backends} (META-INF/services).
 * {@link #create} opens GPU 0 or throws with the reason it cannot: the library is not in this
 * build, no driver, no device, or a compute capability the kernels do not support.
 */
public final class CudaBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public Backend create(int threads) {
        try {
            return CudaBackend.open(0);
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            throw new BackendUnavailableException("the CUDA backend cannot start: " + e.getMessage(), e);
        }
    }
}
