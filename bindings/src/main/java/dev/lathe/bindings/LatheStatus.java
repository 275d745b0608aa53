package dev.lathe.bindings;

/** The lathe_status codes and weight-format / RoPE constants of lathe.h. */
public final class LatheStatus {
    private LatheStatus() {
    }

    public static final int OK = 0;
    public static final int INVALID_ARGUMENT = 1;
    public static final int CUDA = 2;
    public static final int NO_DEVICE = 3;
    public static final int OUT_OF_MEMORY = 4;
    public static final int UNSUPPORTED = 5;

    public static String name(int status) {
        return switch (status) {
            case OK -> "LATHE_OK";
            case INVALID_ARGUMENT -> "LATHE_ERR_INVALID_ARGUMENT";
            case CUDA -> "LATHE_ERR_CUDA";
            case NO_DEVICE -> "LATHE_ERR_NO_DEVICE";
            case OUT_OF_MEMORY -> "LATHE_ERR_OUT_OF_MEMORY";
            case UNSUPPORTED -> "LATHE_ERR_UNSUPPORTED";
            default -> "status " + status;
        };
    }
}
