package dev.lathe.core.tokenizer;

/**
 * GPT-2's reversible map between bytes and printable characters: byte-level BPE vocabularies
 * store every piece as a string of these characters, one per byte, so that whitespace and
 * control bytes never appear raw in a vocabulary file. Printable Latin-1 bytes map to
 * themselves; the other 68 bytes map, in byte order, to U+0100 onwards.
 */
final class GptByteMapping {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final short[] CHAR_TO_BYTE = new short[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = (char) (printable ? b : next++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private GptByteMapping() {
    }

    /** The character that stands for {@code b} (0..255). */
    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte {@code c} stands for, or -1 when {@code c} is not one of the 256 mapped characters. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** Each byte of {@code utf8} as its mapped character. */
    static String encode(byte[] utf8) {
        char[] chars = new char[utf8.length];
        for (int i = 0; i < utf8.length; i++) {
            chars[i] = charOf(utf8[i]);
        }
        return new String(chars);
    }

    /**
     * The bytes a byte-level piece stands for, or null when the piece holds a character outside
     * the mapping (an added token written as plain text).
     */
    static byte[] decode(String piece) {
        byte[] bytes = new byte[piece.length()];
        for (int i = 0; i < piece.length(); i++) {
            int b = byteOf(piece.charAt(i));
            if (b < 0) {
                return null;
            }
            bytes[i] = (byte) b;
        }
        return bytes;
    }
}
