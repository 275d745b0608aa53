package dev.lathe.core.tensor;

import dev.lathe.core.io.ModelFormatException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/** Builds the {@link WeightMatrix} for a tensor's type, after checking its shape against its bytes. */
public final class WeightMatrices {
    private WeightMatrices() {
    }

    /** The matrix {@code [rows, cols]} of any {@link WeightFormat} over {@code data} (not copied). */
    public static WeightMatrix of(String name, WeightFormat format, int rows, int cols, MemorySegment data) {
        return switch (format) {
            case GgmlType type -> of(name, type, rows, cols, data);
            case LatheFormat lathe -> ofLathe(name, lathe, rows, cols, data);
        };
    }

    private static WeightMatrix ofLathe(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, "data");
        String source = "tensor " + name;
        if (rows <= 0 || cols <= 0) {
            throw new ModelFormatException(source, "shape [" + rows + ", " + cols + "] is not positive");
        }
        if (!format.fitsRow(cols)) {
            throw new ModelFormatException(source, "a row of " + cols + " values is not a whole number of " + format + " groups"
                    + (format.bitPlanes() ? " and of its 64-level chunks" : ""));
        }
        long expected = format.matrixBytes(rows, cols);
        if (data.byteSize() != expected) {
            throw new ModelFormatException(source, "a " + format + " matrix [" + rows + ", " + cols + "] takes "
                    + expected + " bytes, but its data is " + data.byteSize() + " bytes"
                    + (format.bitPlanes() && data.byteSize() == (long) rows * (cols / format.groupSize()) * (3 + format.groupSize() / 2)
                            ? " (the size of the older INT3/INT2-in-nibbles layout: re-quantize the model with this Lathe)" : ""));
        }
        return switch (format.kind()) {
            case INT8_CHANNEL -> new Int8ChannelMatrix(name, rows, cols, data);
            case INT_GROUP -> format.bitPlanes() ? new LowBitGroupMatrix(name, format, rows, cols, data)
                    : new IntGroupMatrix(name, format, rows, cols, data);
            case INT_GROUP_ACT_ORDER -> new ActOrderIntGroupMatrix(name, format, rows, cols, data);
            case NF4 -> new Nf4Matrix(name, format, rows, cols, data);
            case SPARSE24_F16 -> new Sparse24F16Matrix(name, format, rows, cols, data);
            case SPARSE24_INT -> new Sparse24IntMatrix(name, format, rows, cols, data);
        };
    }

    /**
     * The matrix {@code [rows, cols]} of {@code type} over {@code data} (not copied).
     *
     * @param name the tensor's name, used in every error message
     * @param data exactly {@code rows * rowBytes} bytes of blocks, little-endian, any alignment
     * @throws ModelFormatException naming the tensor when the type is not supported, the shape is
     *         not positive, {@code cols} is not a whole number of blocks, or {@code data} is not
     *         exactly the size the shape implies
     */
    public static WeightMatrix of(String name, GgmlType type, int rows, int cols, MemorySegment data) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(data, "data");
        String source = "tensor " + name;
        if (!type.supported) {
            throw new ModelFormatException(source,
                    "tensor " + name + " has type " + type + ", which Lathe does not support yet");
        }
        if (rows <= 0 || cols <= 0) {
            throw new ModelFormatException(source, "shape [" + rows + ", " + cols + "] is not positive");
        }
        long rowBytes = type.bytesFor(cols, source);
        long expected = Math.multiplyExact(rowBytes, (long) rows);
        if (data.byteSize() != expected) {
            throw new ModelFormatException(source, "a " + type + " matrix [" + rows + ", " + cols + "] takes "
                    + expected + " bytes, but its data is " + data.byteSize() + " bytes");
        }
        return switch (type) {
            case F32 -> new F32Matrix(name, rows, cols, data);
            case F16 -> new F16Matrix(name, rows, cols, data);
            case BF16 -> new Bf16Matrix(name, rows, cols, data);
            case Q8_0 -> new Q8_0Matrix(name, rows, cols, data);
            case Q4_0 -> new Q4_0Matrix(name, rows, cols, data);
            case Q4_1 -> new Q4_1Matrix(name, rows, cols, data);
            case Q5_0 -> new Q5_0Matrix(name, rows, cols, data);
            case Q5_1 -> new Q5_1Matrix(name, rows, cols, data);
            case Q4_K -> new Q4_KMatrix(name, rows, cols, data);
            case Q5_K -> new Q5_KMatrix(name, rows, cols, data);
            case Q6_K -> new Q6_KMatrix(name, rows, cols, data);
            default -> throw new ModelFormatException(source,
                    "tensor " + name + " has type " + type + ", which Lathe does not support yet");
        };
    }
}
