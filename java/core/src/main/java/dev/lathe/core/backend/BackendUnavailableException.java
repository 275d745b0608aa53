package dev.lathe.core.backend;

/**
 * The backend asked for cannot start on this machine (for CUDA: no library in the build, no
 * driver, no device, a compute capability too old). The message says which; the caller reports
 * it and never silently switches to another backend.
 */
public final class BackendUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BackendUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
