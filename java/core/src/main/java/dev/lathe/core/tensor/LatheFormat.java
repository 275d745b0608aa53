package dev.lathe.core.tensor;

import dev.lathe.core.io.ModelFormatException;
import java.util.Objects;

/**
 * Lathe's own quantized weight formats (not ggml types), each stored row-major, a row being a
 * whole number of blocks, like the ggml formats:
 * <ul>
 * <li>{@link Kind#INT8_CHANNEL}: per row an f32 scale, then {@code cols} int8; value
 *     {@code scale * q}. Symmetric, any {@code cols}.</li>
 * <li>{@link Kind#INT_GROUP}, 4 bits: per group of {@code groupSize} values along the row an f16
 *     scale, a uint8 zero point, then {@code groupSize / 2} bytes of 4-bit levels; byte {@code i}
 *     holds level {@code i} in its low nibble and level {@code i + groupSize/2} in its high
 *     nibble; value {@code scale * (q - zero)}. The GPTQ / AWQ model.</li>
 * <li>{@link Kind#INT_GROUP}, 2 and 3 bits: the same model packed densely, the levels in bit
 *     planes by chunks of 64 and the group headers after them: see {@link LowBitGroupMatrix}.
 *     {@code cols} must be a multiple of 64 as well as of {@code groupSize}.</li>
 * <li>{@link Kind#NF4}: per group an f32 absmax, then {@code groupSize / 2} bytes of 4-bit codes
 *     (same nibble order); value {@code NF4[q] * absmax} with {@link Nf4Codebook}.</li>
 * <li>{@link Kind#NF4} with {@code doubleQuant} (QLoRA's double quantization, spec {@code nf4:gN:dq}):
 *     the absmax values quantized a second time. Per group a signed int8 absmax code {@code c}
 *     (instead of the f32), then the same {@code groupSize / 2} bytes of codes; rows stay
 *     {@code rowBytes} apart. After the {@code rows} rows comes the absmax table: an f32
 *     {@code offset} (the mean of all the tensor's absmax values), then one f32 {@code scale} per
 *     block of {@link #DQ_BLOCK} consecutive groups (row-major group order, the last block
 *     partial), zero-padded to a whole number of rows ({@link #storedRows}). A group's absmax is
 *     {@code max(0, offset + scale[group / 256] * c)}, {@code scale = max |absmax - offset| / 127}
 *     over the block. See {@link Nf4Matrix} for how this compares with bitsandbytes.</li>
 * <li>{@link Kind#INT_GROUP_ACT_ORDER} (spec {@code intB:gN:zp|sym:perm}): GPTQ's act-order
 *     ({@code desc_act}) checkpoints, whose groups are sets of scattered input columns (a
 *     {@code g_idx} permutation). The rows are exactly {@link Kind#INT_GROUP}'s over the columns
 *     reordered so that each group is contiguous; after the {@code rows} rows comes the column
 *     table: {@code cols} little-endian int32, entry {@code j} the input column that stored column
 *     {@code j} holds, zero-padded to a whole number of rows ({@link #storedRows}). Row {@code r}
 *     is {@code W[r, order[j]] = scale * (q[j] - zero)}; the kernels gather x by the table once
 *     per call and run the INT_GROUP kernel ({@link ActOrderIntGroupMatrix}).</li>
 * <li>{@link Kind#SPARSE24_F16} and {@link Kind#SPARSE24_INT}: 2:4 structured sparsity (every
 *     group of 4 consecutive weights along a row has at most 2 non-zeros), the kept values plus
 *     2-bit positions, in two planes rather than row by row: see {@link Sparse24Matrix} for the
 *     bytes. The F16 variant's bytes are exactly the CUDA kernel's layout
 *     (kernels/sparse/sparse24_gemv.cuh); the INT variant stores the kept values as INT4
 *     group-wise ({@code groupSize} counts dense columns, so a group holds {@code groupSize / 2}
 *     kept values). {@code cols} must be a multiple of 32 (one metadata word).</li>
 * </ul>
 *
 * @param kind      the layout
 * @param bits      bits per level: 8 for INT8, 2..4 for INT_GROUP (and its act-order variant), 4 for NF4
 * @param groupSize values per group (0 for INT8_CHANNEL: one group per row)
 * @param zeroPoint INT_GROUP only: levels are asymmetric (a zero point per group); otherwise
 *                  the zero point is fixed at {@code 2^(bits-1)}
 * @param doubleQuant NF4 only: the absmax values are stored as 8-bit codes plus a table (above)
 */
// NOTE: INT3 and INT2 were stored in INT4's nibbles before 2026-11-23 (spec strings int3:/int2:
// unchanged); such files now fail the size check with a message saying to re-quantize them.
public record LatheFormat(Kind kind, int bits, int groupSize, boolean zeroPoint, boolean doubleQuant) implements WeightFormat {

    public enum Kind { INT8_CHANNEL, INT_GROUP, NF4, SPARSE24_F16, SPARSE24_INT, INT_GROUP_ACT_ORDER }

    /** Dense columns described by one 32-bit word of 2:4 metadata (8 groups of 4, a nibble each). */
    public static final int SPARSE24_COLUMNS_PER_WORD = 32;

    /** Double-quantized NF4: absmax values (groups) per second-level f32 scale, as bitsandbytes. */
    public static final int DQ_BLOCK = 256;

    public LatheFormat(Kind kind, int bits, int groupSize, boolean zeroPoint) {
        this(kind, bits, groupSize, zeroPoint, false);
    }

    public LatheFormat {
        Objects.requireNonNull(kind, "kind");
        if (doubleQuant && kind != Kind.NF4) {
            throw new IllegalArgumentException("double quantization is for NF4 only, not " + kind);
        }
        switch (kind) {
            case INT8_CHANNEL -> {
                if (bits != 8 || groupSize != 0 || zeroPoint) {
                    throw new IllegalArgumentException("INT8 per channel is 8-bit, symmetric, one scale per row");
                }
            }
            case INT_GROUP, INT_GROUP_ACT_ORDER -> {
                if (bits < 2 || bits > 4) {
                    throw new IllegalArgumentException("group-wise integer quantization supports 2, 3 or 4 bits, not " + bits
                            + " (use INT8 per channel for 8 bits)");
                }
                checkGroup(groupSize);
            }
            case NF4 -> {
                if (bits != 4 || zeroPoint) {
                    throw new IllegalArgumentException("NF4 is 4-bit and symmetric");
                }
                checkGroup(groupSize);
            }
            case SPARSE24_F16 -> {
                if (bits != 16 || groupSize != 0 || zeroPoint) {
                    throw new IllegalArgumentException("2:4 F16 keeps f16 values: 16 bits, no groups");
                }
            }
            case SPARSE24_INT -> {
                if (bits != 4) {
                    throw new IllegalArgumentException("2:4 with integer values supports 4 bits, not " + bits);
                }
                // NOTE: half of a group's kept values (one nibble plane) must be a whole number of
                // 16-lane vectors, and a group must be a whole number of metadata words: 64 | groupSize.
                if (groupSize < 64 || groupSize > 4096 || groupSize % 64 != 0) {
                    throw new IllegalArgumentException("2:4 INT4 group size (dense columns) must be a multiple of 64 between 64 and 4096"
                            + " (e.g. 64, 128), not " + groupSize);
                }
            }
        }
    }

    private static void checkGroup(int groupSize) {
        if (groupSize < 32 || groupSize > 4096 || groupSize % 32 != 0) {
            throw new IllegalArgumentException("group size must be a multiple of 32 between 32 and 4096 (e.g. 32, 64, 128), not "
                    + groupSize);
        }
    }

    public static LatheFormat int8Channel() {
        return new LatheFormat(Kind.INT8_CHANNEL, 8, 0, false);
    }

    public static LatheFormat intGroup(int bits, int groupSize, boolean zeroPoint) {
        return new LatheFormat(Kind.INT_GROUP, bits, groupSize, zeroPoint);
    }

    /** Group-wise INT over scattered column groups (GPTQ act-order), with its column table after the rows. */
    public static LatheFormat intGroupActOrder(int bits, int groupSize, boolean zeroPoint) {
        return new LatheFormat(Kind.INT_GROUP_ACT_ORDER, bits, groupSize, zeroPoint);
    }

    /** For {@link Kind#INT_GROUP_ACT_ORDER}: the plain group-wise format of its rows; any other format is itself. */
    public LatheFormat rowFormat() {
        return kind == Kind.INT_GROUP_ACT_ORDER ? intGroup(bits, groupSize, zeroPoint) : this;
    }

    public static LatheFormat nf4(int groupSize) {
        return new LatheFormat(Kind.NF4, 4, groupSize, false);
    }

    /** NF4 with its absmax values double-quantized (8-bit codes, an f32 scale per 256 groups, one f32 offset). */
    public static LatheFormat nf4DoubleQuant(int groupSize) {
        return new LatheFormat(Kind.NF4, 4, groupSize, false, true);
    }

    /** 2:4 sparse with f16 kept values: the CUDA kernel's layout. */
    public static LatheFormat sparse24F16() {
        return new LatheFormat(Kind.SPARSE24_F16, 16, 0, false);
    }

    /** 2:4 sparse with INT4 group-wise kept values; {@code groupSize} counts dense columns. */
    public static LatheFormat sparse24Int4(int groupSize, boolean zeroPoint) {
        return new LatheFormat(Kind.SPARSE24_INT, 4, groupSize, zeroPoint);
    }

    /** True for the 2:4 structured-sparse formats. */
    public boolean isSparse24() {
        return kind == Kind.SPARSE24_F16 || kind == Kind.SPARSE24_INT;
    }

    /** Bytes of one group's header (scale, zero or absmax) before its packed levels. */
    int groupHeaderBytes() {
        return kind == Kind.NF4 ? (doubleQuant ? 1 : 4) : 3;
    }

    /**
     * Bytes of one group: header plus its packed nibbles ({@code groupSize / 2}; 2:4: a quarter,
     * half the values are kept). Not for INT2/INT3, whose groups are not contiguous ({@link #bitPlanes}).
     */
    int groupBytes() {
        if (bitPlanes()) {
            throw new IllegalStateException(name() + " keeps its levels in bit planes, not in per-group blocks");
        }
        return groupHeaderBytes() + (kind == Kind.SPARSE24_INT ? groupSize / 4 : groupSize / 2);
    }

    /** True for INT2 and INT3 group-wise (act-order too), stored densely in bit planes ({@link LowBitGroupMatrix}). */
    public boolean bitPlanes() {
        return (kind == Kind.INT_GROUP || kind == Kind.INT_GROUP_ACT_ORDER) && bits < 4;
    }

    /** True when a row of {@code cols} values is a whole number of this format's groups. */
    public boolean fitsRow(long cols) {
        return cols > 0 && switch (kind) {
            case INT8_CHANNEL -> true;
            case INT_GROUP, INT_GROUP_ACT_ORDER -> cols % groupSize == 0 && (!bitPlanes() || cols % LowBitGroupMatrix.CHUNK == 0);
            case NF4 -> cols % groupSize == 0;
            case SPARSE24_F16 -> cols % SPARSE24_COLUMNS_PER_WORD == 0;
            case SPARSE24_INT -> cols % groupSize == 0;
        };
    }

    /**
     * Bytes of one row of {@code cols} values. For the 2:4 formats, whose rows are split over two
     * planes, this is one row's share of each ({@code rows * rowBytes} is still the matrix's size).
     */
    public long rowBytes(long cols) {
        if (!fitsRow(cols)) {
            throw new IllegalArgumentException("a row of " + cols + " values is not a whole number of " + name() + " groups"
                    + (bitPlanes() ? " and of its 64-level chunks" : ""));
        }
        return switch (kind) {
            case INT8_CHANNEL -> 4 + cols;
            case INT_GROUP, INT_GROUP_ACT_ORDER -> bitPlanes() ? LowBitGroupMatrix.rowBytes(bits, groupSize, cols) : cols / groupSize * groupBytes();
            case NF4 -> cols / groupSize * groupBytes();
            case SPARSE24_F16, SPARSE24_INT -> sparse24ValueBytes(cols) + sparse24MetaBytes(cols);
        };
    }

    /** 2:4 formats: bytes of one row in the values plane (f16: {@code cols / 2} halves; INT: its groups). */
    long sparse24ValueBytes(long cols) {
        return kind == Kind.SPARSE24_F16 ? cols : cols / groupSize * groupBytes();
    }

    /** 2:4 formats: bytes of one row in the metadata plane ({@code cols / 32} little-endian int32 words). */
    static long sparse24MetaBytes(long cols) {
        return cols / SPARSE24_COLUMNS_PER_WORD * 4;
    }

    /** Storage bits per weight for rows of {@code cols} values, scales and zero points included (not a double-quant table). */
    public double bitsPerWeight(long cols) {
        return rowBytes(cols) * 8.0 / cols;
    }

    /** Storage bits per weight of a whole {@code [rows, cols]} matrix: {@link #matrixBytes} over its values. */
    public double bitsPerWeight(long rows, long cols) {
        return matrixBytes(rows, cols) * 8.0 / (rows * cols);
    }

    /** Double-quant NF4: bytes of the absmax table (f32 offset, f32 scale per {@link #DQ_BLOCK} groups); 0 otherwise. */
    public long absmaxTableBytes(long rows, long cols) {
        if (!doubleQuant) {
            return 0;
        }
        long groups = Math.multiplyExact(rows, cols / groupSize);
        return 4 + 4 * Math.ceilDiv(groups, DQ_BLOCK);
    }

    /** Bytes of the table after the rows: the double-quant absmax table, or the act-order column table; 0 otherwise. */
    public long tableBytes(long rows, long cols) {
        return kind == Kind.INT_GROUP_ACT_ORDER ? 4 * cols : absmaxTableBytes(rows, cols);
    }

    /**
     * Rows of {@link #rowBytes} bytes the matrix occupies: {@code rows}, plus for double-quant NF4
     * and act-order INT the rows holding their table (zero-padded). Files store the tensor as I8 of
     * this many rows.
     */
    public long storedRows(long rows, long cols) {
        return rows + Math.ceilDiv(tableBytes(rows, cols), rowBytes(cols));
    }

    /** Bytes of a whole {@code [rows, cols]} matrix: {@code storedRows * rowBytes}. */
    public long matrixBytes(long rows, long cols) {
        return Math.multiplyExact(storedRows(rows, cols), rowBytes(cols));
    }

    /**
     * The logical row count of a matrix stored as {@code storedRows} rows of {@code cols} values
     * (the inverse of {@link #storedRows}), or -1 when no row count gives that many.
     */
    public long logicalRows(long storedRows, long cols) {
        if (tableBytes(1, cols) == 0) {
            return storedRows;
        }
        // storedRows(r) = r + tableRows(r), tableRows non-decreasing in r: try each small table size
        for (long tableRows = 1; tableRows < storedRows; tableRows++) {
            long rows = storedRows - tableRows;
            if (storedRows(rows, cols) == storedRows) {
                return rows;
            }
        }
        return -1;
    }

    @Override
    public String name() {
        return switch (kind) {
            case INT8_CHANNEL -> "INT8";
            case INT_GROUP -> "INT" + bits + "-g" + groupSize + (zeroPoint ? "" : "-sym");
            case INT_GROUP_ACT_ORDER -> "INT" + bits + "-g" + groupSize + (zeroPoint ? "" : "-sym") + "-actorder";
            case NF4 -> "NF4-g" + groupSize + (doubleQuant ? "-dq" : "");
            case SPARSE24_F16 -> "2:4-F16";
            case SPARSE24_INT -> "2:4-INT" + bits + "-g" + groupSize + (zeroPoint ? "" : "-sym");
        };
    }

    /**
     * The spec string stored in files and parsed by {@link #parse}: {@code int8}, {@code int4:g32:zp},
     * {@code nf4:g64}, {@code nf4:g64:dq}, {@code sparse24:f16}, {@code sparse24:int4:g128:zp}.
     */
    public String spec() {
        return switch (kind) {
            case INT8_CHANNEL -> "int8";
            case INT_GROUP -> "int" + bits + ":g" + groupSize + (zeroPoint ? ":zp" : ":sym");
            case INT_GROUP_ACT_ORDER -> "int" + bits + ":g" + groupSize + (zeroPoint ? ":zp" : ":sym") + ":perm";
            case NF4 -> "nf4:g" + groupSize + (doubleQuant ? ":dq" : "");
            case SPARSE24_F16 -> "sparse24:f16";
            case SPARSE24_INT -> "sparse24:int" + bits + ":g" + groupSize + (zeroPoint ? ":zp" : ":sym");
        };
    }

    /** The format a {@link #spec()} string names; anything else is a {@link ModelFormatException} naming {@code source}. */
    public static LatheFormat parse(String spec, String source) {
        try {
            String[] parts = spec.split(":");
            if (parts.length == 1 && parts[0].equals("int8")) {
                return int8Channel();
            }
            if (parts.length == 2 && parts[0].equals("sparse24") && parts[1].equals("f16")) {
                return sparse24F16();
            }
            if (parts.length == 4 && parts[0].equals("sparse24") && parts[1].startsWith("int") && parts[2].startsWith("g")
                    && (parts[3].equals("zp") || parts[3].equals("sym"))) {
                return new LatheFormat(Kind.SPARSE24_INT, Integer.parseInt(parts[1].substring(3)),
                        Integer.parseInt(parts[2].substring(1)), parts[3].equals("zp"));
            }
            if (parts.length == 2 && parts[0].equals("nf4") && parts[1].startsWith("g")) {
                return nf4(Integer.parseInt(parts[1].substring(1)));
            }
            if (parts.length == 3 && parts[0].equals("nf4") && parts[1].startsWith("g") && parts[2].equals("dq")) {
                return nf4DoubleQuant(Integer.parseInt(parts[1].substring(1)));
            }
            if (parts.length == 3 && parts[0].startsWith("int") && parts[1].startsWith("g")
                    && (parts[2].equals("zp") || parts[2].equals("sym"))) {
                return intGroup(Integer.parseInt(parts[0].substring(3)), Integer.parseInt(parts[1].substring(1)),
                        parts[2].equals("zp"));
            }
            if (parts.length == 4 && parts[0].startsWith("int") && parts[1].startsWith("g")
                    && (parts[2].equals("zp") || parts[2].equals("sym")) && parts[3].equals("perm")) {
                return intGroupActOrder(Integer.parseInt(parts[0].substring(3)), Integer.parseInt(parts[1].substring(1)),
                        parts[2].equals("zp"));
            }
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(source, "weight format '" + spec + "': " + e.getMessage(), e);
        }
        throw new ModelFormatException(source, "unknown Lathe weight format '" + spec
                + "' (expected int8, intB:gN:zp|sym[:perm] with B in 2..4, nf4:gN, nf4:gN:dq, sparse24:f16 or sparse24:int4:gN:zp|sym)");
    }

    @Override
    public String toString() {
        return name();
    }
}
