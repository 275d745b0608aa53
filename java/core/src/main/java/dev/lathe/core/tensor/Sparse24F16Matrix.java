package dev.lathe.core.tensor;

import static dev.lathe.core.tensor.BlockLanes.FLOATS;
import static dev.lathe.core.tensor.BlockLanes.LANES;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

/**
 * 2:4 sparse with f16 kept values ({@link LatheFormat.Kind#SPARSE24_F16}); the layout, shared
 * with the CUDA kernel, is in {@link Sparse24Matrix}. A step: LANES kept halves widened
 * ({@link BlockLanes#halvesToFloats}), the x values they meet gathered by one selectFrom, one FMA.
 */
final class Sparse24F16Matrix extends Sparse24Matrix {

    Sparse24F16Matrix(String name, LatheFormat format, int rows, int cols, MemorySegment data) {
        super(name, format, rows, cols, data);
    }

    @Override
    float keptValue(int row, int k) {
        return half(valueOffset(row) + 2L * k);
    }

    private FloatVector kept(long values, int k) {
        return BlockLanes.halvesToFloats(BlockLanes.loadShorts(data, values + 2L * k));
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        checkInput(x, xOffset);
        long values = valueOffset(row);
        long meta = metaOffset(row);
        int keptCount = cols / 2;
        // NOTE: two accumulators, as F16Matrix: enough to hide the FMA latency without growing
        // the loop past C2's inlining budget.
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        int k = 0;
        for (; k <= keptCount - 2 * LANES; k += 2 * LANES) {
            FloatVector x0 = selectX(denseColumns(metaBits(meta, k)), x, xOffset + 2 * k);
            acc0 = kept(values, k).fma(x0, acc0);
            FloatVector x1 = selectX(denseColumns(metaBits(meta, k + LANES)), x, xOffset + 2 * (k + LANES));
            acc1 = kept(values, k + LANES).fma(x1, acc1);
        }
        for (; k < keptCount; k += LANES) { // cols is a multiple of 32, so keptCount is a multiple of LANES
            acc0 = kept(values, k).fma(selectX(denseColumns(metaBits(meta, k)), x, xOffset + 2 * k), acc0);
        }
        return LaneSums.sum(acc0.add(acc1));
    }

    @Override
    void dot4(int row, float[] x, int xOffset, int xStride, float[] sums) {
        long values = valueOffset(row);
        long meta = metaOffset(row);
        int keptCount = cols / 2;
        FloatVector acc0 = FloatVector.zero(FLOATS);
        FloatVector acc1 = FloatVector.zero(FLOATS);
        FloatVector acc2 = FloatVector.zero(FLOATS);
        FloatVector acc3 = FloatVector.zero(FLOATS);
        for (int k = 0; k < keptCount; k += LANES) {
            IntVector columns = denseColumns(metaBits(meta, k));
            FloatVector w = kept(values, k);
            int xi = xOffset + 2 * k;
            acc0 = w.fma(selectX(columns, x, xi), acc0);
            acc1 = w.fma(selectX(columns, x, xi + xStride), acc1);
            acc2 = w.fma(selectX(columns, x, xi + 2 * xStride), acc2);
            acc3 = w.fma(selectX(columns, x, xi + 3 * xStride), acc3);
        }
        LaneSums.sum4(acc0, acc1, acc2, acc3, sums);
    }

    /** Writes the values plane (kept values as f16, see {@link #keptColumns}) at {@code dst[0..]}. */
    static void packValues(float[] w, int[] kept, int rows, int cols, MemorySegment dst) {
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < cols / 2; k++) {
                dst.set(HALF, ((long) r * (cols / 2) + k) * 2, Float.floatToFloat16(w[r * cols + kept[r * (cols / 2) + k]]));
            }
        }
    }
}
