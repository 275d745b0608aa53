package dev.lathe.core.kv;

import dev.lathe.core.backend.KvDtype;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How many KV blocks a memory budget buys. One block holds {@code blockSize} tokens of K and V
 * for every layer: {@code 2 * layers * blockSize * kvHeads * dtype.bytesPerVector(headDim)} bytes,
 * i.e. {@code headDim * dtype.bytes()} per vector plus, for int8, its 4-byte f32 scale. So an f16
 * or bf16 pool holds twice the blocks of an f32 pool in the same budget, and an int8 pool
 * {@code 4 * headDim / (headDim + 4)} times as many: 3.76x at headDim 64, 3.88x at 128.
 */
public final class KvPoolSize {
    private static final Pattern SIZE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([KMGT]?I?B?)?", Pattern.CASE_INSENSITIVE);

    private KvPoolSize() {
    }

    public static long bytesPerBlock(int layers, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
        return 2L * layers * blockSize * kvHeads * dtype.bytesPerVector(headDim);
    }

    /** {@link #bytesPerBlock(int, int, int, int, KvDtype)} of an f32 pool. */
    public static long bytesPerBlock(int layers, int blockSize, int kvHeads, int headDim) {
        return bytesPerBlock(layers, blockSize, kvHeads, headDim, KvDtype.F32);
    }

    /** Blocks that fit in {@code budgetBytes}; at least one block must fit. */
    public static int blocksFor(long budgetBytes, long bytesPerBlock, String what) {
        long blocks = budgetBytes / bytesPerBlock;
        if (blocks < 1) {
            throw new IllegalArgumentException(what + ": " + budgetBytes + " bytes hold no KV block (one block is "
                    + bytesPerBlock + " bytes)");
        }
        return (int) Math.min(blocks, Integer.MAX_VALUE);
    }

    /**
     * Parses a size such as {@code 512MB}, {@code 2G}, {@code 1.5GiB} or {@code 1048576} (bytes).
     * Units are powers of 1024. {@code what} names the option in the error.
     */
    public static long parseBytes(String text, String what) {
        Matcher m = text == null ? null : SIZE.matcher(text.trim());
        if (m == null || !m.matches()) {
            throw new IllegalArgumentException(what + ": '" + text + "' is not a size (expected e.g. 512MB, 2GB, 1048576)");
        }
        double value = Double.parseDouble(m.group(1));
        String unit = m.group(2) == null ? "" : m.group(2).toUpperCase(Locale.ROOT);
        long scale = switch (unit.isEmpty() ? ' ' : unit.charAt(0)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            case 'T' -> 1L << 40;
            default -> 1L;
        };
        double bytes = value * scale;
        if (!(bytes >= 1) || bytes > (double) (1L << 50)) {
            throw new IllegalArgumentException(what + ": '" + text + "' is outside [1 byte, 1 PiB]");
        }
        return (long) bytes;
    }
}
