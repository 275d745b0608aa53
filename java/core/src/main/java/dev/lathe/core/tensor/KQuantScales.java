package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The 12-byte packed scales of Q4_K and Q5_K (ggml's get_scale_min_k4): eight 6-bit scales and
 * eight 6-bit mins, one pair per 32-value sub-block. Bytes 0..3 hold scales 0..3 in their low
 * 6 bits, bytes 4..7 mins 0..3; scales and mins 4..7 take their low 4 bits from the nibbles of
 * bytes 8..11 and their high 2 bits from the top bits of bytes 0..3 (scales) and 4..7 (mins).
 */
final class KQuantScales {
    private KQuantScales() {
    }

    /** Sub-block {@code j}'s scale (0..63), from the 12 bytes at {@code scalesOffset}. */
    static int scale(MemorySegment data, long scalesOffset, int j) {
        if (j < 4) {
            return u8(data, scalesOffset + j) & 63;
        }
        return (u8(data, scalesOffset + j + 4) & 0x0F) | ((u8(data, scalesOffset + j - 4) >>> 6) << 4);
    }

    /** Sub-block {@code j}'s min (0..63), from the 12 bytes at {@code scalesOffset}. */
    static int min(MemorySegment data, long scalesOffset, int j) {
        if (j < 4) {
            return u8(data, scalesOffset + j + 4) & 63;
        }
        return (u8(data, scalesOffset + j + 4) >>> 4) | ((u8(data, scalesOffset + j) >>> 6) << 4);
    }

    private static int u8(MemorySegment data, long offset) {
        return data.get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }
}
