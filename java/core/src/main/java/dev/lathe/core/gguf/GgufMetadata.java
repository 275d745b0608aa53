package dev.lathe.core.gguf;

import dev.lathe.core.io.ModelFormatException;

import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.SequencedMap;

/**
 * A GGUF file's key/value metadata, in file order, with typed accessors. A missing required key
 * or a value of the wrong type is a {@link ModelFormatException} naming the file and the key.
 */
public final class GgufMetadata {
    private final String source;
    private final SequencedMap<String, GgufValue> values;

    GgufMetadata(String source, SequencedMap<String, GgufValue> values) {
        this.source = source;
        this.values = Collections.unmodifiableSequencedMap(values);
    }

    public String source() {
        return source;
    }

    public SequencedMap<String, GgufValue> asMap() {
        return values;
    }

    public boolean has(String key) {
        return values.containsKey(key);
    }

    public GgufValue raw(String key) {
        return values.get(key);
    }

    public String string(String key) {
        return optString(key).orElseThrow(() -> missing(key));
    }

    public Optional<String> optString(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (v.type() != GgufValueType.STRING) {
            throw wrongType(key, "a string", v);
        }
        return Optional.of((String) v.value());
    }

    /** An integer of any width. */
    public long integer(String key) {
        OptionalLong v = optInteger(key);
        if (v.isEmpty()) {
            throw missing(key);
        }
        return v.getAsLong();
    }

    public OptionalLong optInteger(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return OptionalLong.empty();
        }
        if (!v.type().isInteger()) {
            throw wrongType(key, "an integer", v);
        }
        return OptionalLong.of((Long) v.value());
    }

    /** An integer that must fit in [min, max]; used for every value that later sizes something. */
    public int boundedInt(String key, int min, int max) {
        long v = integer(key);
        if (v < min || v > max) {
            throw new ModelFormatException(source, "metadata " + key + " = " + v + " is outside [" + min + ", " + max + "]");
        }
        return (int) v;
    }

    public Optional<Integer> optBoundedInt(String key, int min, int max) {
        return has(key) ? Optional.of(boundedInt(key, min, max)) : Optional.empty();
    }

    /** A float32 or float64 value (an integer is accepted too, as some writers store e.g. rope.freq_base that way). */
    public Optional<Float> optFloat(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        return Optional.of(switch (v.value()) {
            case Float f -> f;
            case Double d -> d.floatValue();
            case Long l when v.type().isInteger() -> l.floatValue();
            default -> throw wrongType(key, "a number", v);
        });
    }

    public boolean optBool(String key, boolean defaultValue) {
        GgufValue v = values.get(key);
        if (v == null) {
            return defaultValue;
        }
        if (v.type() != GgufValueType.BOOL) {
            throw wrongType(key, "a bool", v);
        }
        return (Boolean) v.value();
    }

    @SuppressWarnings("unchecked")
    public List<String> stringArray(String key) {
        GgufValue v = array(key, GgufValueType.STRING);
        return (List<String>) v.value();
    }

    public float[] floatArray(String key) {
        GgufValue v = array(key, GgufValueType.FLOAT32);
        return ((float[]) v.value()).clone();
    }

    /** An integer array of any width whose values all fit in an int. */
    public int[] intArray(String key) {
        GgufValue v = requireArray(key);
        if (!v.elementType().isInteger()) {
            throw wrongType(key, "an integer array", v);
        }
        long[] longs = (long[]) v.value();
        int[] ints = new int[longs.length];
        for (int i = 0; i < longs.length; i++) {
            if (longs[i] != (int) longs[i]) {
                throw new ModelFormatException(source, "metadata " + key + "[" + i + "] = " + longs[i] + " does not fit in an int");
            }
            ints[i] = (int) longs[i];
        }
        return ints;
    }

    private GgufValue array(String key, GgufValueType elementType) {
        GgufValue v = requireArray(key);
        if (v.elementType() != elementType) {
            throw wrongType(key, "an array of " + elementType, v);
        }
        return v;
    }

    private GgufValue requireArray(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            throw missing(key);
        }
        if (v.type() != GgufValueType.ARRAY) {
            throw wrongType(key, "an array", v);
        }
        return v;
    }

    private ModelFormatException missing(String key) {
        return new ModelFormatException(source, "required metadata key '" + key + "' is missing");
    }

    private ModelFormatException wrongType(String key, String expected, GgufValue found) {
        String foundType = found.type() == GgufValueType.ARRAY ? "an array of " + found.elementType() : found.type().toString();
        return new ModelFormatException(source, "metadata " + key + " should be " + expected + " but is " + foundType);
    }
}
