package dev.lathe.cuda;

import java.util.Locale;

/**
 * An on/off switch for a CUDA path that stays off until a GPU has proven it (decode graphs, the
 * flash prefill kernel): a system property, else an environment variable; off when unset.
 */
final class OptInSwitch {
    private OptInSwitch() {
    }

    /** Whether {@code -Dproperty} (first) or {@code $environment} turns the path on. */
    static boolean enabled(String property, String environment) {
        String value = System.getProperty(property);
        String source = "-D" + property;
        if (value == null) {
            value = System.getenv(environment);
            source = environment;
        }
        return parse(value, source);
    }

    /** on/1/true/yes or off/0/false/no, any case; unset or blank is off; anything else names {@code source}. */
    static boolean parse(String value, String source) {
        if (value == null || value.isBlank()) {
            return false;
        }
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "1", "on", "true", "yes" -> true;
            case "0", "off", "false", "no" -> false;
            default -> throw new IllegalArgumentException(source + "=" + value + ": expected on or off");
        };
    }
}
