package dev.lathe.core.tensor;

import dev.lathe.core.io.ModelFormatException;

/**
 * The ggml tensor types, with their GGUF type ids and block geometry (ggml.h / the GGUF spec).
 * A block of {@code blockSize} consecutive values along a row occupies {@code blockBytes} bytes.
 * Types Lathe can compute with are marked {@code supported}; the others are known by name so an
 * unsupported file gets an error that says which type it holds.
 */
public enum GgmlType implements WeightFormat {
    F32(0, 1, 4, true),
    F16(1, 1, 2, true),
    Q4_0(2, 32, 2 + 16, true),
    Q4_1(3, 32, 2 + 2 + 16, true),
    Q5_0(6, 32, 2 + 4 + 16, true),
    Q5_1(7, 32, 2 + 2 + 4 + 16, true),
    Q8_0(8, 32, 2 + 32, true),
    Q8_1(9, 32, 4 + 32, false),
    Q2_K(10, 256, 256 / 16 + 256 / 4 + 2 + 2, false),
    Q3_K(11, 256, 256 / 8 + 256 / 4 + 12 + 2, false),
    Q4_K(12, 256, 2 + 2 + 12 + 256 / 2, true),
    Q5_K(13, 256, 2 + 2 + 12 + 256 / 8 + 256 / 2, true),
    Q6_K(14, 256, 256 / 2 + 256 / 4 + 256 / 16 + 2, true),
    Q8_K(15, 256, 4 + 256 + 256 / 16 * 2, false),
    IQ2_XXS(16, 256, 2 + 256 / 4, false),
    IQ2_XS(17, 256, 2 + 256 / 4 + 256 / 32, false),
    IQ3_XXS(18, 256, 2 + 3 * 256 / 8, false),
    IQ1_S(19, 256, 2 + 256 / 8 + 256 / 16, false),
    IQ4_NL(20, 32, 2 + 16, false),
    IQ3_S(21, 256, 2 + 256 / 4 + 256 / 8 + 256 / 32 + 4, false),
    IQ2_S(22, 256, 2 + 256 / 4 + 256 / 16, false),
    IQ4_XS(23, 256, 2 + 2 + 256 / 64 + 256 / 2, false),
    I8(24, 1, 1, false),
    I16(25, 1, 2, false),
    I32(26, 1, 4, false),
    I64(27, 1, 8, false),
    F64(28, 1, 8, false),
    IQ1_M(29, 256, 256 / 8 + 256 / 16 + 256 / 32, false),
    BF16(30, 1, 2, true);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    public final int id;
    /** Values per block. */
    public final int blockSize;
    /** Bytes per block. */
    public final int blockBytes;
    /** True when Lathe has kernels for this type. */
    public final boolean supported;

    GgmlType(int id, int blockSize, int blockBytes, boolean supported) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
        this.supported = supported;
    }

    /** The type with this GGUF id; unknown ids are a {@link ModelFormatException} naming {@code source}. */
    public static GgmlType byId(int id, String source) {
        GgmlType t = id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
        if (t == null) {
            throw new ModelFormatException(source, "unknown ggml tensor type id " + id);
        }
        return t;
    }

    /**
     * Bytes taken by {@code n} values of this type. {@code n} must be a multiple of the block size
     * (checked: a row that ends inside a block is a malformed file, not a rounding question).
     */
    public long bytesFor(long n, String source) {
        if (n < 0 || n % blockSize != 0) {
            throw new ModelFormatException(source,
                    "a row of " + n + " values is not a whole number of " + this + " blocks of " + blockSize);
        }
        long blocks = n / blockSize;
        if (blocks > Long.MAX_VALUE / blockBytes) {
            throw new ModelFormatException(source, "a row of " + n + " " + this + " values takes more than 2^63 bytes");
        }
        return blocks * blockBytes;
    }
}
