package dev.lathe.core.backend;

import java.util.Locale;

/**
 * The element type of a {@link KvCache}'s K and V pools. Attention math stays f32 whatever the
 * storage: f16 and bf16 are rounded to nearest even on write and widened on read; int8 is
 * quantized per (token, kv-head) vector on write and its scale applied on read.
 */
public enum KvDtype {
    /** 4 bytes, exact. */
    F32(Float.BYTES),
    /** IEEE half: 2 bytes, 11 significant bits (relative error at most 2^-11), range +-65504. */
    F16(2),
    /** bfloat16: 2 bytes, 8 significant bits (relative error at most 2^-8), the f32 range. */
    BF16(2),
    /**
     * Symmetric int8: each (token, kv-head) vector of headDim values is stored as
     * {@code round(x / s)} in [-127, 127] with {@code s = max|x| / 127} kept beside it as an f32, so
     * one vector costs {@code headDim + 4} bytes. Error per value at most {@code s / 2}.
     */
    INT8(1);

    private final int bytes;

    KvDtype(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per stored value, scales not counted (see {@link #bytesPerVector}). */
    public int bytes() {
        return bytes;
    }

    /** Bytes of the per-vector scale stored beside each (token, kv-head) vector: 4 for int8, else 0. */
    public int scaleBytes() {
        return this == INT8 ? Float.BYTES : 0;
    }

    /** Bytes one (token, kv-head) vector of {@code headDim} values takes in K (or V), its scale included. */
    public long bytesPerVector(int headDim) {
        return (long) headDim * bytes + scaleBytes();
    }

    /** Lower-case name as the CLI spells it: f32, f16, bf16, int8. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code f32}, {@code f16}, {@code bf16} or {@code int8} (any case); {@code what} names the option in the error. */
    public static KvDtype parse(String text, String what) {
        if (text != null) {
            for (KvDtype d : values()) {
                if (d.label().equalsIgnoreCase(text.trim())) {
                    return d;
                }
            }
        }
        throw new IllegalArgumentException(what + ": '" + text + "' is not a KV element type (expected f32, f16, bf16 or int8)");
    }
}
