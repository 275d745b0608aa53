package dev.lathe.cuda;

/**
 * The weight layouts the kernels read: lathe.h's {@code LATHE_WEIGHT_*} codes for lathe_matmul,
 * and the layouts with entry points of their own (code -1): the 4-bit ones of
 * kernels/quant/int4_gemv.cuh ({@link Int4Weights}, {@link Nf4Weights}) and 2:4 sparse FP16
 * (kernels/sparse/sparse24_gemv.cuh, {@link Sparse24Weights}).
 */
enum KernelLayout {
    /** float [rows, cols]. */
    F32(0, 4),
    /** half [rows, cols]. */
    F16(1, 2),
    /** bfloat16 [rows, cols]. */
    BF16(2, 2),
    /** int8 [rows, cols] + half scales [rows, cols/32]. */
    Q8_0(3, 1),
    /** 16 bytes of nibbles per group of 32 ([rows, cols/2]) + half scales [rows, cols/32]. */
    Q4_0(4, 0),
    /** ggml block_q4_K as in the file: 144 bytes per 256 values, no separate scales. */
    Q4_K(5, 0),
    /** ggml block_q6_K as in the file: 210 bytes per 256 values, no separate scales. */
    Q6_K(6, 0),
    /** ggml block_q5_K as in the file: 176 bytes per 256 values, no separate scales. */
    Q5_K(7, 0),
    /** Group-wise INT4 (lathe_matmul_int4): {@link Int4Weights}. */
    INT4_GROUP(-1, 0),
    /** NF4 (lathe_matmul_nf4): {@link Nf4Weights}. */
    NF4(-1, 0),
    /** 2:4 sparse FP16 (lathe_matmul_sparse24): {@link Sparse24Weights}. */
    SPARSE24(-1, 0);

    /** The C constant. */
    final int code;
    /** Bytes per value of a dense layout (0: the block formats, counted separately). */
    final int valueBytes;

    KernelLayout(int code, int valueBytes) {
        this.code = code;
        this.valueBytes = valueBytes;
    }

    boolean hasScales() {
        return this == Q8_0 || this == Q4_0;
    }

    /** Bytes of the values array for a [rows, cols] matrix. */
    long valuesBytes(long rows, long cols) {
        return switch (this) {
            case Q4_0, INT4_GROUP, NF4 -> rows * cols / 2;
            case SPARSE24 -> rows * cols;  // cols / 2 halves per row
            case Q4_K -> rows * (cols / 256) * 144;
            case Q6_K -> rows * (cols / 256) * 210;
            case Q5_K -> rows * (cols / 256) * 176;
            default -> rows * cols * valueBytes;
        };
    }

    /** Bytes of the scales array (half per group of 32), 0 for dense layouts. */
    long scalesBytes(long rows, long cols) {
        return hasScales() ? rows * (cols / 32) * 2 : 0;
    }
}
