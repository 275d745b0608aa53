package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;
import static dev.lathe.core.tensor.BlockLanes.highNibbles;
import static dev.lathe.core.tensor.BlockLanes.loadBytes;
import static dev.lathe.core.tensor.BlockLanes.lowNibbles;
import static dev.lathe.core.tensor.BlockLanes.toFloats;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

/**
 * 2:4 sparse with INT4 group-wise kept values ({@link LatheFormat.Kind#SPARSE24_INT}); layout in
 * {@link Sparse24Matrix}. A group of g dense columns stores its g/2 kept values as IntGroupMatrix
 * stores a group: f16 scale, uint8 zero, g/4 bytes (low nibbles the first half of the kept values,
 * high nibbles the second). Roofline at g = 128: 0.25 + 0.125 + 0.02 bytes per dense value.
 * Kernel: IntGroupMatrix's (zero subtracted in byte lanes, one scale per group) with the x values
 * gathered as in {@link Sparse24F16Matrix}.
 */
final class Sparse24IntMatrix extends Sparse24Matrix {
    private static final int SCALE = 0;
    private static final int ZERO = 2;
    private static final int QS = 3;

    private final int keptPerGroup; // g/2
    private final int quarter;      // g/4: bytes of nibbles per group
    private final int groupBytes;
    private final int groupsPerRow;

    Sparse24IntMatrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
        this.keptPerGroup = format.groupSize() / 2;
        this.quarter = format.groupSize() / 4;
        this.groupBytes = format.groupBytes();
        this.groupsPerRow = cols / format.groupSize();
    }

    @Override
    float keptValue(int row, int k) {
        long block = valueOffset(row) + (long) (k / keptPerGroup) * groupBytes;
        int local = k % keptPerGroup;
        int packed = data.get(BYTE, block + QS + local % quarter) & 0xFF;
        int level = local < quarter ? packed & 0x0F : packed >>> 4;
        return half(block + SCALE) * (level - (data.get(BYTE, block + ZERO) & 0xFF));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long block = valueOffset(row);
        long meta = metaOffset(row);
        FloatVector acc = FloatVector.zero(FLOATS);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            FloatVector qx = FloatVector.zero(FLOATS);
            byte zero = data.get(BYTE, block + ZERO);
            int k0 = g * keptPerGroup;
            for (int i = 0; i < quarter; i += LANES) {
                ByteVector packed = loadBytes(data, block + QS + i);
                int low = k0 + i;
                int high = k0 + quarter + i;
                qx = toFloats(lowNibbles(packed).sub(zero)).fma(selectX(denseColumns(metaBits(meta, low)), x, xOffset + 2 * low), qx);
                qx = toFloats(highNibbles(packed).sub(zero)).fma(selectX(denseColumns(metaBits(meta, high)), x, xOffset + 2 * high), qx);
            }
            acc = qx.fma(FloatVector.broadcast(FLOATS, half(block + SCALE)), acc);
        }
        return LaneSums.sum(acc);
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long block = valueOffset(row);
        long meta = metaOffset(row);
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        for (int g = 0; g < groupsPerRow; g++, block += groupBytes) {
            float scale = half(block + SCALE);
            byte zero = data.get(BYTE, block + ZERO);
            for (int h = 0; h < 2; h++) { // low nibbles: kept values 0..g/4-1 of the group, high: g/4..g/2-1
                for (int i = 0; i < quarter; i += LANES) {
                    ByteVector packed = loadBytes(data, block + QS + i);
                    ByteVector q = h == 0 ? lowNibbles(packed) : highNibbles(packed);
                    FloatVector w = toFloats(q.sub(zero)).mul(scale);
                    int k = g * keptPerGroup + h * quarter + i;
                    IntVector columns = denseColumns(metaBits(meta, k));
                    int xi = xOffset + 2 * k;
                    acc0 = w.fma(selectX(columns, x, xi), acc0);
                    acc1 = w.fma(selectX(columns, x, xi + xStride), acc1);
                    acc2 = w.fma(selectX(columns, x, xi + 2 * xStride), acc2);
                    acc3 = w.fma(selectX(columns, x, xi + 3 * xStride), acc3);
                }
            }
        }
        LaneSums.sum4(acc0, acc1, acc2, acc3, sums);
    }

    /**
     * Writes the values plane at {@code dst[0..]}: each group's kept values quantized on
     * {@code grids[row * groups + group]} when given (SparseGPT's joint prune + quantize), else on
     * the RTN grid of the group ({@link LatheEncoder#fitGroup} over its kept values: the same grid
     * as over its dense values, since the range always includes 0).
     */
    static void packValues(LatheFormat format, float[] w, int[] kept, LatheEncoder.Grid[] grids, int rows, int cols,
                           MemorySegment dst) {
        int g = format.groupSize();
        int keptPerGroup = g / 2;
        int groups = cols / g;
        float[] values = new float[keptPerGroup];
        byte[] levels = new byte[keptPerGroup];
        long rowBytes = format.sparse24ValueBytes(cols);
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < groups; b++) {
                for (int i = 0; i < keptPerGroup; i++) {
                    values[i] = w[r * cols + kept[r * (cols / 2) + b * keptPerGroup + i]];
                }
                LatheEncoder.Grid grid = grids != null ? grids[r * groups + b]
                        : LatheEncoder.fitGroup(values, 0, keptPerGroup, format.bits(), format.zeroPoint());
                for (int i = 0; i < keptPerGroup; i++) {
                    levels[i] = (byte) grid.level(values[i]);
                }
                IntGroupMatrix.packGroup(levels, 0, keptPerGroup, grid.scale(), grid.zero(), dst,
                        r * rowBytes + (long) b * format.groupBytes());
            }
        }
    }
}
