package dev.lathe.cuda;

import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A 2:4 structured-sparse FP16 weight in the layout of kernels/sparse/sparse24_gemv.cuh: every
 * group of 4 consecutive weights along a row keeps at most 2, stored as their f16 values plus a
 * nibble of two 2-bit column indices (NVIDIA's sparse-tensor-core metadata).
 *
 * @param rows   output features
 * @param cols   input features, a multiple of 32
 * @param values {@code [rows, cols/2]} f16 bits of the kept weights, in column order per group
 * @param meta   {@code [rows, cols/32]}: nibble g of word j is group 8j+g: bits 0-1 the first kept
 *               column (0..3), bits 2-3 the second (greater)
 */
public record Sparse24Weights(int rows, int cols, short[] values, int[] meta) {

    public Sparse24Weights {
        if (rows < 1 || cols < 32 || cols % 32 != 0) {
            throw new IllegalArgumentException("2:4 weight [" + rows + ", " + cols + "] needs cols a positive multiple of 32");
        }
        if (values.length != rows * (cols / 2) || meta.length != rows * (cols / 32)) {
            throw new IllegalArgumentException("2:4 arrays do not match [" + rows + ", " + cols + "]");
        }
    }

    /**
     * A 2:4 F16 matrix of a model file (core's {@link LatheFormat.Kind#SPARSE24_F16}, whose two
     * planes are this layout's arrays, values then metadata) copied out as they are.
     */
    static Sparse24Weights of(WeightMatrix w) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.SPARSE24_F16) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ", not 2:4 F16");
        }
        int rows = w.rows();
        int cols = w.cols();
        MemorySegment data = w.data();
        short[] values = new short[rows * (cols / 2)];
        int[] meta = new int[rows * (cols / 32)];
        long valueBytes = 2L * values.length;
        MemorySegment.copy(data, ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, values, 0,
                values.length);
        MemorySegment.copy(data, ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), valueBytes, meta, 0,
                meta.length);
        return new Sparse24Weights(rows, cols, values, meta);
    }

    /** W[r, i]: the stored value when column i of its group is kept, else 0. */
    public float value(int r, int i) {
        int group = i / 4;
        int nibble = (meta[r * (cols / 32) + group / 8] >>> (4 * (group % 8))) & 0xF;
        int first = nibble & 3;
        int second = nibble >>> 2;
        int column = i % 4;
        long base = (long) r * (cols / 2) + 2L * group;
        if (column == first) {
            return Float.float16ToFloat(values[(int) base]);
        }
        if (column == second) {
            return Float.float16ToFloat(values[(int) base + 1]);
        }
        return 0f;
    }

    /**
     * Prunes {@code w [rows, cols]} to 2:4 by magnitude (in each group of 4 the two largest |w| stay,
     * the earlier column on ties) and compresses it; kept values are rounded to f16.
     */
    public static Sparse24Weights compress(float[] w, int rows, int cols) {
        short[] values = new short[rows * (cols / 2)];
        int[] meta = new int[rows * (cols / 32)];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < cols / 4; g++) {
                int base = r * cols + 4 * g;
                int first = 0;
                for (int c = 1; c < 4; c++) {
                    if (Math.abs(w[base + c]) > Math.abs(w[base + first])) {
                        first = c;
                    }
                }
                int second = first == 0 ? 1 : 0;
                for (int c = 0; c < 4; c++) {
                    if (c != first && Math.abs(w[base + c]) > Math.abs(w[base + second])) {
                        second = c;
                    }
                }
                int lo = Math.min(first, second);
                int hi = Math.max(first, second);
                values[r * (cols / 2) + 2 * g] = Float.floatToFloat16(w[base + lo]);
                values[r * (cols / 2) + 2 * g + 1] = Float.floatToFloat16(w[base + hi]);
                meta[r * (cols / 32) + g / 8] |= (lo | hi << 2) << (4 * (g % 8));
            }
        }
        return new Sparse24Weights(rows, cols, values, meta);
    }
}
