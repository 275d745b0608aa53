package dev.lathe.cuda;

import java.util.Locale;

/**
 * An on/off switch for a CUDA path (decode graphs, the flash prefill kernel): a system property,
 * else an environment variable; on when unset. Both paths were off until their first GPU run
 * (bench/results/gpu-20261123-h100) showed them identical to the paths they replace and faster;
 * {@code =off} brings the plain path back.
 */
final class CudaSwitch {
    private CudaSwitch() {
    }

    /** Whether {@code -Dproperty} (first) or {@code $environment} leaves the path on. */
    static boolean enabled(String property, String environment) {
        String value = System.getProperty(property);
        String source = "-D" + property;
        if (value == null) {
            value = System.getenv(environment);
            source = environment;
        }
        return parse(value, source);
    }

    /** on/1/true/yes or off/0/false/no, any case; unset or blank is on; anything else names {@code source}. */
    static boolean parse(String value, String source) {
        if (value == null || value.isBlank()) {
            return true;
        }
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "1", "on", "true", "yes" -> true;
            case "0", "off", "false", "no" -> false;
            default -> throw new IllegalArgumentException(source + "=" + value + ": expected on or off");
        };
    }
}
