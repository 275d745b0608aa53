package dev.lathe.core.backend;

/**
 * A backend implementation found through {@link java.util.ServiceLoader} (the CUDA module
 * registers one). {@link #create} must either return a working backend or throw with the reason
 * it cannot start: Lathe never falls back silently to another backend.
 */
public interface BackendProvider {
    String name();

    Backend create(int threads);
}
