package dev.lathe.core.gguf;

import java.util.List;

/**
 * One metadata value with its GGUF type, so a file can be written back exactly as read.
 * Scalars: integers of every width as {@link Long} (unsigned 64-bit values keep their bits),
 * {@link Float}, {@link Double}, {@link Boolean}, {@link String}.
 * Arrays ({@code type == ARRAY}): {@code elementType} says what the elements are and
 * {@code value} holds {@code long[]} (integers), {@code float[]}, {@code double[]},
 * {@code boolean[]}, {@code List<String>}, or {@code List<GgufValue>} (nested arrays).
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    public static GgufValue of(GgufValueType type, Object scalar) {
        return new GgufValue(type, null, scalar);
    }

    public static GgufValue array(GgufValueType elementType, Object elements) {
        return new GgufValue(GgufValueType.ARRAY, elementType, elements);
    }

    /** Number of elements of an array value; 1 for a scalar. */
    public int length() {
        if (type != GgufValueType.ARRAY) {
            return 1;
        }
        return switch (value) {
            case long[] a -> a.length;
            case float[] a -> a.length;
            case double[] a -> a.length;
            case boolean[] a -> a.length;
            case List<?> l -> l.size();
            default -> throw new IllegalStateException("unexpected array storage " + value.getClass());
        };
    }

    /** A one-line rendering for display; long arrays are summarised. */
    public String summary() {
        if (type != GgufValueType.ARRAY) {
            return type == GgufValueType.STRING ? quote((String) value) : String.valueOf(value);
        }
        StringBuilder sb = new StringBuilder("[" + elementType + " x " + length() + "]");
        if (value instanceof List<?> list && !list.isEmpty() && list.getFirst() instanceof String) {
            sb.append(' ');
            for (int i = 0; i < Math.min(5, list.size()); i++) {
                sb.append(i == 0 ? "" : ", ").append(quote((String) list.get(i)));
            }
            if (list.size() > 5) {
                sb.append(", ...");
            }
        }
        return sb.toString();
    }

    private static String quote(String s) {
        String shown = s.length() > 60 ? s.substring(0, 60) + "..." : s;
        return '"' + shown.replace("\n", "\\n") + '"';
    }
}
