package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.INTS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * 2:4 structured-sparse weights ({@link LatheFormat#isSparse24()}): in every group of 4
 * consecutive weights along a row at most 2 are non-zero; the 2 kept values of each group are
 * stored, in column order, with their two 2-bit column indices. The data is two planes, one after
 * the other:
 * <pre>
 *   values: [rows, valueRowBytes]  F16: cols/2 f16 kept values per row (little-endian);
 *                                  INT: per group of g dense columns (g/2 kept values) an f16
 *                                  scale, a uint8 zero point, then g/4 bytes whose low nibbles are
 *                                  kept values 0..g/4-1 and high nibbles g/4..g/2-1 of the group
 *                                  (IntGroupMatrix's group layout over the kept values);
 *   meta:   [rows, cols/32] int32  little-endian; nibble g of word j describes dense group 8j+g:
 *                                  bits 0-1 the column (0..3) of its first kept value, bits 2-3 of
 *                                  its second (first &lt; second). Kept value k of a row therefore
 *                                  has its index at bits 2(k mod 16) of word k/16.
 * </pre>
 * For F16 these bytes are exactly kernels/sparse/sparse24_gemv.cuh's {@code values} and
 * {@code meta} arrays (java/cuda Sparse24Weights): the CUDA backend can upload the two planes as
 * they are ({@code data[0, rows*cols)} and {@code data[rows*cols, rows*cols*9/8)}), no repacking.
 * Roofline (F16): 1.125 bytes and 2 FLOPs per 2 dense values, 56% of dense F16's bytes.
 *
 * <p>Kernel: a step takes LANES kept values and their 2*LANES metadata bits; the bits become
 * lane indices {@code 4*(i/2) + position} into the 2*LANES dense columns of x they cover, and one
 * two-table {@code selectFrom} (AVX-512 vpermi2ps) gathers those x values for the FMA. The zeros
 * are never read or multiplied.
 */
// NOTE: planar (all values, then all metadata) rather than row-interleaved, because that is the
// CUDA kernel's layout; the CPU kernels only need each row's offset in both planes.
abstract sealed class Sparse24Matrix extends LatheMatrix permits Sparse24F16Matrix, Sparse24IntMatrix {
    /** Kept values described by one metadata word. */
    static final int KEPT_PER_WORD = LatheFormat.SPARSE24_COLUMNS_PER_WORD / 2;
    private static final IntVector SHIFTS; // lane i: 2i, the offset of kept value i's index bits
    private static final IntVector BASES;  // lane i: 4*(i/2), the first dense column of its group

    static {
        int[] shifts = new int[LANES];
        int[] bases = new int[LANES];
        for (int i = 0; i < LANES; i++) {
            shifts[i] = 2 * i;
            bases[i] = 4 * (i / 2);
        }
        SHIFTS = IntVector.fromArray(INTS, shifts, 0);
        BASES = IntVector.fromArray(INTS, bases, 0);
    }

    final long valueRowBytes;
    final long metaStart;     // byte offset of the metadata plane
    final int metaWordsPerRow;

    Sparse24Matrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
        this.valueRowBytes = format.sparse24ValueBytes(cols);
        this.metaStart = valueRowBytes * rows;
        this.metaWordsPerRow = cols / LatheFormat.SPARSE24_COLUMNS_PER_WORD;
    }

    /** Byte offset of {@code row} in the values plane. */
    final long valueOffset(int row) {
        return Objects.checkIndex(row, rows) * valueRowBytes;
    }

    /** Byte offset of {@code row}'s first metadata word. */
    final long metaOffset(int row) {
        return metaStart + (long) row * metaWordsPerRow * 4;
    }

    /** The 2*LANES index bits of kept values {@code k .. k+LANES-1} of the row at {@code meta} ({@code k % LANES == 0}). */
    final int metaBits(long meta, int k) {
        int word = data.get(INT, meta + 4L * (k / KEPT_PER_WORD));
        // NOTE: LANES is 16 (a whole word) or 8 (half a word); a Java int shift by 32 would not clear it.
        return LANES == KEPT_PER_WORD ? word : word >>> (2 * (k % KEPT_PER_WORD));
    }

    /** Lane i: the dense column, relative to kept value 0's group, of kept value i ({@code 0..2*LANES-1}). */
    static IntVector denseColumns(int bits) {
        return IntVector.broadcast(INTS, bits).lanewise(VectorOperators.LSHR, SHIFTS).and(3).add(BASES);
    }

    /** The x values the kept weights meet: {@code x[xi + columns[i]]} for the 2*LANES values at {@code xi}. */
    // NOTE: the two-table select runs on the bits as ints: float index lanes would cost an
    // int-to-float conversion per step for the same vpermi2ps.
    static FloatVector selectX(IntVector columns, float[] x, int xi) {
        IntVector low = FloatVector.fromArray(FLOATS, x, xi).reinterpretAsInts();
        IntVector high = FloatVector.fromArray(FLOATS, x, xi + LANES).reinterpretAsInts();
        return columns.selectFrom(low, high).reinterpretAsFloats();
    }

    /** Kept value {@code k} ({@code 0..cols/2-1}) of {@code row}: the scalar reference decoding. */
    abstract float keptValue(int row, int k);

    @Override
    public final void dequantizeRow(int row, float[] out, int outOffset) {
        Arrays.fill(out, outOffset, outOffset + cols, 0f);
        long meta = metaOffset(row);
        for (int group = 0; group < cols / 4; group++) {
            int word = data.get(INT, meta + 4L * (group / 8));
            int nibble = (word >>> (4 * (group % 8))) & 0xF;
            out[outOffset + 4 * group + (nibble & 3)] = keptValue(row, 2 * group);
            // += : should a file pair a column with itself, the two values add, as in the kernels
            out[outOffset + 4 * group + (nibble >>> 2)] += keptValue(row, 2 * group + 1);
        }
    }

    /**
     * The column pairs of a 2:4 matrix, as the metadata stores them:
     * {@code kept[row * cols/2 + 2*group + {0,1}]} are the two dense columns kept in that group of 4.
     * The non-zeros of each group are kept; a group with fewer than two gets its lowest zero columns.
     *
     * @throws IllegalArgumentException naming the row and columns when a group has more than 2 non-zeros
     */
    static int[] keptColumns(float[] w, int rows, int cols) {
        int[] kept = new int[rows * (cols / 2)];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < cols / 4; g++) {
                int base = r * cols + 4 * g;
                int first = -1;
                int second = -1;
                int nonZero = 0;
                for (int c = 0; c < 4; c++) {
                    if (w[base + c] != 0) {
                        nonZero++;
                        if (first < 0) {
                            first = c;
                        } else {
                            second = c;
                        }
                    }
                }
                if (nonZero > 2) {
                    throw new IllegalArgumentException("row " + r + " columns " + 4 * g + ".." + (4 * g + 3) + " hold " + nonZero
                            + " non-zeros: not 2:4 sparse");
                }
                for (int c = 0; c < 4 && second < 0; c++) { // fill with zero columns
                    if (c != first) {
                        if (first < 0) {
                            first = c;
                        } else {
                            second = c;
                        }
                    }
                }
                kept[r * (cols / 2) + 2 * g] = 4 * g + Math.min(first, second);
                kept[r * (cols / 2) + 2 * g + 1] = 4 * g + Math.max(first, second);
            }
        }
        return kept;
    }

    /** Writes the metadata plane of {@code kept} (from {@link #keptColumns}) at {@code dst[metaStart..]}. */
    static void packMeta(int[] kept, int rows, int cols, MemorySegment dst, long metaStart) {
        int words = cols / LatheFormat.SPARSE24_COLUMNS_PER_WORD;
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < words; j++) {
                int word = 0;
                for (int g = 0; g < 8; g++) {
                    int group = 8 * j + g;
                    int first = kept[r * (cols / 2) + 2 * group] - 4 * group;
                    int second = kept[r * (cols / 2) + 2 * group + 1] - 4 * group;
                    word |= (first | second << 2) << (4 * g);
                }
                dst.set(INT, metaStart + ((long) r * words + j) * 4, word);
            }
        }
    }
}
