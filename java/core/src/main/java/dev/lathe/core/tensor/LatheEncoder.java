package dev.lathe.core.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Writes f32 rows in Lathe's own formats by round-to-nearest (RTN), and packs levels chosen
 * elsewhere (GPTQ, AWQ) with {@link #packIntGroupRow}. The grid of a group (scale and zero point)
 * is {@link #fitGroup}: the one GPTQ's reference quantizer uses, so RTN and GPTQ differ only in
 * how levels are chosen.
 */
public final class LatheEncoder {
    private LatheEncoder() {
    }

    /**
     * The grid of one integer group: {@code value = scale * (level - zero)}, levels in
     * {@code [0, 2^bits - 1]}. The scale is already rounded to f16, as stored.
     */
    public record Grid(float scale, int zero, int maxLevel) {
        /** The nearest level of {@code v} on this grid. */
        public int level(float v) {
            return Math.clamp(Math.round(v / scale) + zero, 0, maxLevel);
        }

        public float value(int level) {
            return scale * (level - zero);
        }
    }

    /**
     * The grid for {@code n} values {@code w[offset..]}: asymmetric over {@code [min(w, 0),
     * max(w, 0)]} with an integer zero point, or symmetric over {@code [-amax, amax]} with the
     * zero point fixed at {@code 2^(bits-1)}. An all-zero group gets scale 1.
     */
    public static Grid fitGroup(float[] w, int offset, int n, int bits, boolean zeroPoint) {
        int maxLevel = (1 << bits) - 1;
        float lo = 0;
        float hi = 0;
        for (int i = 0; i < n; i++) {
            lo = Math.min(lo, w[offset + i]);
            hi = Math.max(hi, w[offset + i]);
        }
        return gridFor(lo, hi, bits, zeroPoint, maxLevel);
    }

    /** The grid for the range {@code [lo, hi]} (lo <= 0 <= hi). */
    public static Grid gridFor(float lo, float hi, int bits, boolean zeroPoint, int maxLevel) {
        if (!zeroPoint) {
            float amax = Math.max(-lo, hi);
            lo = -amax;
            hi = amax;
        }
        if (lo == 0 && hi == 0) {
            lo = -1;
            hi = 1;
        }
        float scale = roundToHalf((hi - lo) / maxLevel);
        if (scale == 0) {
            scale = Float.float16ToFloat((short) 1); // below f16's range: the smallest subnormal
        }
        int zero = zeroPoint ? Math.clamp(Math.round(-lo / scale), 0, maxLevel) : 1 << (bits - 1);
        return new Grid(scale, zero, maxLevel);
    }

    static float roundToHalf(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    /**
     * Encodes one row of {@code cols} values by RTN into {@code dst[dstOffset..]} ({@code format.rowBytes(cols)} bytes).
     * The 2:4 formats are stored in planes, not rows, and double-quant NF4 needs every absmax of
     * the matrix: encode those whole with {@link #encode}.
     */
    public static void encodeRow(LatheFormat format, float[] src, int srcOffset, int cols, MemorySegment dst, long dstOffset) {
        if (format.isSparse24()) {
            throw new IllegalArgumentException(format + " is stored in two planes, not row by row: encode the whole matrix");
        }
        if (format.doubleQuant()) {
            throw new IllegalArgumentException(format + " quantizes the absmax values of the whole matrix: encode the whole matrix");
        }
        Objects.checkFromIndexSize(srcOffset, cols, src.length);
        Objects.checkFromIndexSize(dstOffset, format.rowBytes(cols), dst.byteSize());
        switch (format.kind()) {
            case INT8_CHANNEL -> {
                float amax = 0;
                for (int i = 0; i < cols; i++) {
                    amax = Math.max(amax, Math.abs(src[srcOffset + i]));
                }
                float scale = amax / 127;
                float inverse = scale != 0 ? 1 / scale : 0;
                byte[] levels = new byte[cols];
                for (int i = 0; i < cols; i++) {
                    levels[i] = (byte) Math.clamp(Math.round(src[srcOffset + i] * inverse), -127, 127);
                }
                Int8ChannelMatrix.packRow(levels, 0, cols, scale, dst, dstOffset);
            }
            case INT_GROUP -> {
                int g = format.groupSize();
                byte[] levels = new byte[cols];
                Grid[] grids = new Grid[cols / g];
                for (int b = 0; b < cols / g; b++) {
                    grids[b] = fitGroup(src, srcOffset + b * g, g, format.bits(), format.zeroPoint());
                    for (int i = b * g; i < (b + 1) * g; i++) {
                        levels[i] = (byte) grids[b].level(src[srcOffset + i]);
                    }
                }
                packIntGroupRow(format, levels, grids, cols, dst, dstOffset);
            }
            case NF4 -> {
                int g = format.groupSize();
                byte[] codes = new byte[g];
                for (int b = 0; b < cols / g; b++) {
                    int base = srcOffset + b * g;
                    float absmax = 0;
                    for (int i = 0; i < g; i++) {
                        absmax = Math.max(absmax, Math.abs(src[base + i]));
                    }
                    float inverse = absmax != 0 ? 1 / absmax : 0;
                    for (int i = 0; i < g; i++) {
                        codes[i] = (byte) Nf4Codebook.nearest(src[base + i] * inverse);
                    }
                    Nf4Matrix.packGroup(codes, 0, g, absmax, dst, dstOffset + (long) b * format.groupBytes());
                }
            }
            case INT_GROUP_ACT_ORDER -> throw new IllegalArgumentException(format + " reorders columns: pack its rows with "
                    + "packIntGroupRow and its column table with packColumnOrder");
            case SPARSE24_F16, SPARSE24_INT -> throw new AssertionError(format); // rejected above
        }
    }

    /**
     * Packs a row of an {@link LatheFormat.Kind#INT_GROUP} format from chosen levels:
     * {@code levels[cols]}, one grid per group ({@code grids[cols / groupSize]}).
     */
    public static void packIntGroupRow(LatheFormat format, byte[] levels, Grid[] grids, int cols, MemorySegment dst, long dstOffset) {
        if (format.kind() != LatheFormat.Kind.INT_GROUP && format.kind() != LatheFormat.Kind.INT_GROUP_ACT_ORDER) {
            throw new IllegalArgumentException(format + " is not a group-wise integer format");
        }
        Objects.checkFromIndexSize(dstOffset, format.rowBytes(cols), dst.byteSize());
        if (format.bitPlanes()) {
            LowBitGroupMatrix.packRow(format, levels, 0, grids, cols, dst, dstOffset);
            return;
        }
        int g = format.groupSize();
        for (int b = 0; b < cols / g; b++) {
            IntGroupMatrix.packGroup(levels, b * g, g, grids[b].scale(), grids[b].zero(), dst, dstOffset + (long) b * format.groupBytes());
        }
    }

    /**
     * The levels and grids of row {@code row} of a group-wise INT matrix: {@code levels[cols]},
     * {@code grids[cols / groupSize]} (the inverse of {@link #packIntGroupRow}; for exporters).
     */
    public static void unpackIntGroupRow(WeightMatrix w, int row, byte[] levels, Grid[] grids) {
        switch (w) {
            case IntGroupMatrix m -> m.unpackRow(row, levels, grids);
            case LowBitGroupMatrix m -> m.unpackRow(row, levels, grids);
            case ActOrderIntGroupMatrix m -> m.unpackRow(row, levels, grids); // levels in stored (group) order
            default -> throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ", not a group-wise INT matrix");
        }
    }

    /**
     * Act-order INT ({@link LatheFormat.Kind#INT_GROUP_ACT_ORDER}): writes the column table,
     * {@code order[j]} the input column of stored column {@code j}, after the {@code rows} packed
     * rows of {@code dst} (a segment of {@code format.matrixBytes(rows, cols)} bytes).
     */
    public static void packColumnOrder(LatheFormat format, int[] order, int rows, int cols, MemorySegment dst) {
        if (format.kind() != LatheFormat.Kind.INT_GROUP_ACT_ORDER || order.length != cols) {
            throw new IllegalArgumentException(format + ": a column table of " + order.length + " entries for " + cols + " columns");
        }
        long at = rows * format.rowBytes(cols);
        Objects.checkFromIndexSize(at, 4L * cols, dst.byteSize());
        for (int j = 0; j < cols; j++) {
            dst.set(PackedMatrix.INT, at + 4L * j, order[j]);
        }
    }

    /** Act-order INT: the input column each stored column holds ({@code [cols]}); the identity for plain group-wise INT. */
    public static int[] columnOrder(WeightMatrix w) {
        if (w instanceof ActOrderIntGroupMatrix m) {
            return m.order();
        }
        int[] identity = new int[w.cols()];
        for (int j = 0; j < identity.length; j++) {
            identity[j] = j;
        }
        return identity;
    }

    /** The codes and absmax values of row {@code row} of an NF4 matrix: {@code codes[cols]}, {@code absmax[cols / groupSize]}. */
    public static void unpackNf4Row(WeightMatrix w, int row, byte[] codes, float[] absmax) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.NF4) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ", not NF4");
        }
        ((Nf4Matrix) w).unpackRow(row, codes, absmax);
    }

    /** Packs a row of an NF4 format from codes ({@code codes[cols]}) and per-group absmax values. */
    public static void packNf4Row(LatheFormat format, byte[] codes, float[] absmax, int cols, MemorySegment dst, long dstOffset) {
        if (format.kind() != LatheFormat.Kind.NF4 || format.doubleQuant()) {
            throw new IllegalArgumentException(format + " is not NF4 with f32 absmax values");
        }
        Objects.checkFromIndexSize(dstOffset, format.rowBytes(cols), dst.byteSize());
        int g = format.groupSize();
        for (int b = 0; b < cols / g; b++) {
            Nf4Matrix.packGroup(codes, b * g, g, absmax[b], dst, dstOffset + (long) b * format.groupBytes());
        }
    }

    /**
     * The second-level state of a double-quant NF4 matrix (layout in {@link LatheFormat}): each
     * group's int8 absmax code (row-major group order), the tensor's offset and one scale per
     * {@link LatheFormat#DQ_BLOCK} groups; group absmax = {@code max(0, offset + blockScale * code)}.
     */
    public record AbsmaxCodes(byte[] codes, float offset, float[] blockScales) {
    }

    /** The absmax codes, offset and block scales of a double-quant NF4 matrix (for exporters). */
    public static AbsmaxCodes absmaxCodes(WeightMatrix w) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.NF4 || !f.doubleQuant()) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ", not double-quant NF4");
        }
        int groupsPerRow = w.cols() / f.groupSize();
        int groups = Math.multiplyExact(w.rows(), groupsPerRow);
        long rowBytes = f.rowBytes(w.cols());
        MemorySegment data = w.data();
        byte[] codes = new byte[groups];
        for (int b = 0; b < groups; b++) {
            codes[b] = data.get(PackedMatrix.BYTE, (b / groupsPerRow) * rowBytes + (long) (b % groupsPerRow) * f.groupBytes());
        }
        long table = w.rows() * rowBytes;
        float[] scales = new float[Math.ceilDiv(groups, LatheFormat.DQ_BLOCK)];
        for (int k = 0; k < scales.length; k++) {
            scales[k] = data.get(PackedMatrix.FLOAT, table + 4 + 4L * k);
        }
        return new AbsmaxCodes(codes, data.get(PackedMatrix.FLOAT, table), scales);
    }

    /**
     * Packs a whole double-quant NF4 matrix from its codes ({@code codes[rows * cols]}, row-major)
     * and absmax state into {@code dst} ({@code format.matrixBytes(rows, cols)} bytes).
     */
    public static void packNf4DoubleQuant(LatheFormat format, byte[] codes, AbsmaxCodes absmax, int rows, int cols, MemorySegment dst) {
        if (format.kind() != LatheFormat.Kind.NF4 || !format.doubleQuant()) {
            throw new IllegalArgumentException(format + " is not double-quant NF4");
        }
        int g = format.groupSize();
        int groupsPerRow = cols / g;
        int groups = Math.multiplyExact(rows, groupsPerRow);
        if (codes.length != (long) rows * cols || absmax.codes().length != groups
                || absmax.blockScales().length != Math.ceilDiv(groups, LatheFormat.DQ_BLOCK)) {
            throw new IllegalArgumentException("double-quant NF4 [" + rows + ", " + cols + "]: " + codes.length + " codes, "
                    + absmax.codes().length + " absmax codes, " + absmax.blockScales().length + " block scales do not fit");
        }
        long rowBytes = format.rowBytes(cols);
        Objects.checkFromIndexSize(0, format.matrixBytes(rows, cols), dst.byteSize());
        for (int b = 0; b < groups; b++) {
            long at = (b / groupsPerRow) * rowBytes + (long) (b % groupsPerRow) * format.groupBytes();
            Nf4Matrix.packDoubleQuantGroup(codes, b * g, g, absmax.codes()[b], dst, at);
        }
        long table = rows * rowBytes;
        dst.set(PackedMatrix.FLOAT, table, absmax.offset());
        for (int k = 0; k < absmax.blockScales().length; k++) {
            dst.set(PackedMatrix.FLOAT, table + 4 + 4L * k, absmax.blockScales()[k]);
        }
    }

    /**
     * Encodes the row-major {@code values [rows, cols]} by RTN into a new segment of {@code arena}.
     * A 2:4 format needs {@code values} already 2:4 sparse (at most 2 non-zeros in every group of
     * 4 along a row; pruning makes them so) and keeps its non-zeros.
     */
    public static MemorySegment encode(LatheFormat format, float[] values, int rows, int cols, Arena arena) {
        if (format.isSparse24()) {
            return encodeSparse24(format, values, null, rows, cols, arena);
        }
        return format.doubleQuant() ? encodeNf4DoubleQuant(format, values, rows, cols, arena) : encodeRows(format, values, rows, cols, arena);
    }

    /**
     * Double-quant NF4 (layout in {@link LatheFormat}): every group's absmax, their mean as the
     * offset, per block of {@link LatheFormat#DQ_BLOCK} groups the scale {@code max |absmax -
     * offset| / 127} and each absmax's int8 code by round to nearest; then each group's NF4 codes
     * against its dequantized absmax (so the codes fit the absmax the kernels will use).
     */
    private static MemorySegment encodeNf4DoubleQuant(LatheFormat format, float[] values, int rows, int cols, Arena arena) {
        checkShape(values, rows, cols);
        int g = format.groupSize();
        long rowBytes = format.rowBytes(cols); // checks cols fits
        int groupsPerRow = cols / g;
        int groups = Math.multiplyExact(rows, groupsPerRow);
        float[] absmax = new float[groups];
        double sum = 0;
        for (int b = 0; b < groups; b++) {
            float m = 0;
            for (int i = 0; i < g; i++) {
                m = Math.max(m, Math.abs(values[b * g + i]));
            }
            if (!Float.isFinite(m)) {
                throw new IllegalArgumentException("group " + b + " holds a value that is not finite: NF4 cannot encode it");
            }
            absmax[b] = m;
            sum += m;
        }
        float offset = (float) (sum / groups);
        int blocks = Math.ceilDiv(groups, LatheFormat.DQ_BLOCK);
        float[] blockScales = new float[blocks];
        for (int b = 0; b < groups; b++) {
            int k = b / LatheFormat.DQ_BLOCK;
            blockScales[k] = Math.max(blockScales[k], Math.abs(absmax[b] - offset) / 127);
        }
        MemorySegment out = arena.allocate(format.matrixBytes(rows, cols), 8);
        byte[] codes = new byte[g];
        for (int b = 0; b < groups; b++) {
            float blockScale = blockScales[b / LatheFormat.DQ_BLOCK];
            byte absmaxCode = (byte) (blockScale == 0 ? 0 : Math.clamp(Math.round((absmax[b] - offset) / blockScale), -127, 127));
            float stored = Nf4Matrix.dequantizeAbsmax(offset, blockScale, absmaxCode);
            float inverse = stored != 0 ? 1 / stored : 0;
            for (int i = 0; i < g; i++) {
                codes[i] = (byte) Nf4Codebook.nearest(values[b * g + i] * inverse);
            }
            long at = (b / groupsPerRow) * rowBytes + (long) (b % groupsPerRow) * format.groupBytes();
            Nf4Matrix.packDoubleQuantGroup(codes, 0, g, absmaxCode, out, at);
        }
        long table = rows * rowBytes;
        out.set(PackedMatrix.FLOAT, table, offset);
        for (int k = 0; k < blocks; k++) {
            out.set(PackedMatrix.FLOAT, table + 4 + 4L * k, blockScales[k]);
        }
        return out;
    }

    /**
     * Encodes the 2:4-sparse {@code values [rows, cols]} in {@code format} (a 2:4 format) into a
     * new segment of {@code arena}. For 2:4 INT, {@code grids} ({@code [rows * cols / groupSize]},
     * dense-column groups) fixes each group's grid (a joint prune + quantize chose the values on
     * it); null fits them by RTN.
     *
     * @throws IllegalArgumentException when a group of 4 holds more than 2 non-zeros, or the shape does not fit
     */
    public static MemorySegment encodeSparse24(LatheFormat format, float[] values, Grid[] grids, int rows, int cols, Arena arena) {
        if (!format.isSparse24()) {
            throw new IllegalArgumentException(format + " is not a 2:4 format");
        }
        checkShape(values, rows, cols);
        long rowBytes = format.rowBytes(cols); // checks cols fits
        long valueBytes = format.sparse24ValueBytes(cols) * rows;
        MemorySegment out = arena.allocate(rowBytes * rows, 8);
        int[] kept = Sparse24Matrix.keptColumns(values, rows, cols);
        if (format.kind() == LatheFormat.Kind.SPARSE24_F16) {
            Sparse24F16Matrix.packValues(values, kept, rows, cols, out);
        } else {
            Sparse24IntMatrix.packValues(format, values, kept, grids, rows, cols, out);
        }
        Sparse24Matrix.packMeta(kept, rows, cols, out, valueBytes);
        return out;
    }

    private static void checkShape(float[] values, int rows, int cols) {
        if (rows <= 0 || cols <= 0 || (long) rows * cols != values.length) {
            throw new IllegalArgumentException("shape [" + rows + ", " + cols + "] does not match " + values.length + " values");
        }
    }

    private static MemorySegment encodeRows(LatheFormat format, float[] values, int rows, int cols, Arena arena) {
        checkShape(values, rows, cols);
        long rowBytes = format.rowBytes(cols);
        MemorySegment out = arena.allocate(rowBytes * rows, 8);
        for (int r = 0; r < rows; r++) {
            encodeRow(format, values, r * cols, cols, out, r * rowBytes);
        }
        return out;
    }
}
