package dev.lathe.core.backend;

import java.util.Locale;

/**
 * The element type of a {@link KvCache}'s K and V pools. Attention math stays f32 whatever the
 * storage: f16 and bf16 are rounded to nearest even on write and widened on read.
 */
public enum KvDtype {
    /** 4 bytes, exact. */
    F32(Float.BYTES),
    /** IEEE half: 2 bytes, 11 significant bits (relative error at most 2^-11), range +-65504. */
    F16(2),
    /** bfloat16: 2 bytes, 8 significant bits (relative error at most 2^-8), the f32 range. */
    BF16(2);

    private final int bytes;

    KvDtype(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per stored value. */
    public int bytes() {
        return bytes;
    }

    /** Lower-case name as the CLI spells it: f32, f16, bf16. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code f32}, {@code f16} or {@code bf16} (any case); {@code what} names the option in the error. */
    public static KvDtype parse(String text, String what) {
        if (text != null) {
            for (KvDtype d : values()) {
                if (d.label().equalsIgnoreCase(text.trim())) {
                    return d;
                }
            }
        }
        throw new IllegalArgumentException(what + ": '" + text + "' is not a KV element type (expected f32, f16 or bf16)");
    }
}
