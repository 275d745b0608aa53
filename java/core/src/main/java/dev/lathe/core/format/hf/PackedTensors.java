package dev.lathe.core.format.hf;

import dev.lathe.core.io.ModelFormatException;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * What the readers of packed Hugging Face tensors (GPTQ, AWQ, bitsandbytes) share: finding a
 * module's tensors by name with the dtype expected, checking their shapes against the projection's
 * {@code [N, K]} before anything is allocated, and reading their little-endian elements.
 */
final class PackedTensors {
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private PackedTensors() {
    }

    /** The tensor {@code name}, which must exist with one of {@code dtypes}. */
    static SafetensorsFile.Tensor require(Map<String, SafetensorsFile.Tensor> all, String source, String name, String... dtypes) {
        SafetensorsFile.Tensor t = all.get(name);
        if (t == null) {
            throw new ModelFormatException(source, "tensor '" + name + "' is missing");
        }
        if (!Arrays.asList(dtypes).contains(t.dtype())) {
            throw new ModelFormatException(source, "tensor '" + name + "' is " + t.dtype() + ", expected "
                    + String.join(" or ", dtypes));
        }
        return t;
    }

    /** Checks {@code t}'s shape is {@code expected}; {@code what} says what the shape follows from. */
    static void checkShape(String source, SafetensorsFile.Tensor t, String what, long... expected) {
        if (!Arrays.equals(t.shape(), expected)) {
            throw new ModelFormatException(source, "tensor '" + t.name() + "' is " + t.shapeString() + ", expected "
                    + Arrays.toString(expected) + " (" + what + ")");
        }
    }

    /** The number of elements of {@code t} (its byte size over the dtype's, already checked by SafetensorsFile). */
    static long elements(SafetensorsFile.Tensor t) {
        long n = 1;
        for (long d : t.shape()) {
            n *= d;
        }
        return n;
    }

    /** Element {@code i} of an F16, BF16 or F32 tensor as a float. */
    static float floatAt(SafetensorsFile.Tensor t, long i) {
        return switch (t.dtype()) {
            case "F16" -> Float.float16ToFloat(t.data().getAtIndex(HALF, i));
            case "BF16" -> Float.intBitsToFloat((t.data().getAtIndex(HALF, i) & 0xFFFF) << 16);
            case "F32" -> t.data().getAtIndex(F32, i);
            default -> throw new IllegalStateException(t.name() + " is " + t.dtype());
        };
    }

    /**
     * Element {@code i} of a scales tensor, which must be exactly an f16 (Lathe's group-wise INT
     * stores f16 scales): F16 always is; a BF16 or F32 scale outside f16's precision is refused.
     */
    static float halfScale(String source, SafetensorsFile.Tensor t, long i) {
        float v = floatAt(t, i);
        if (Float.float16ToFloat(Float.floatToFloat16(v)) != v && !Float.isNaN(v)) {
            throw new ModelFormatException(source, "tensor '" + t.name() + "' element " + i + " (" + v + ") is not exactly an f16;"
                    + " Lathe's group-wise INT stores f16 scales");
        }
        return v;
    }

    static final List<String> SCALE_DTYPES = List.of("F16", "BF16", "F32");
}
