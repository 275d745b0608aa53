package dev.lathe.bindings;

/**
 * A lathe.h function returned a status other than {@code LATHE_OK}: carries the status, the
 * function and {@code lathe_last_error()}'s message.
 */
public final class LatheException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final String function;

    public LatheException(int status, String function, String message) {
        super(function + " failed (" + LatheStatus.name(status) + "): " + message);
        this.status = status;
        this.function = function;
    }

    /** One of the {@link LatheStatus} codes. */
    public int status() {
        return status;
    }

    /** The C function that failed, e.g. {@code lathe_matmul}. */
    public String function() {
        return function;
    }
}
