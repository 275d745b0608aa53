package dev.lathe.cuda;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;

/**
 * A weight uploaded to the device in its kernel layout ({@link KernelLayout}), still answering the
 * host-side {@link WeightMatrix} methods from the original (so a caller that reads it on the CPU,
 * e.g. a test, sees the file's values). Device memory belongs to the backend and is freed when it
 * closes.
 */
final class DeviceWeight implements WeightMatrix {
    private final WeightMatrix source;
    final KernelLayout layout;
    final long values;  // device address of the values array
    final long scales;  // device address of the scales array, 0 for dense layouts

    DeviceWeight(WeightMatrix source, KernelLayout layout, long values, long scales) {
        this.source = source;
        this.layout = layout;
        this.values = values;
        this.scales = scales;
    }

    WeightMatrix source() {
        return source;
    }

    @Override
    public String name() {
        return source.name();
    }

    @Override
    public GgmlType type() {
        return source.type();
    }

    @Override
    public int rows() {
        return source.rows();
    }

    @Override
    public int cols() {
        return source.cols();
    }

    @Override
    public MemorySegment data() {
        return source.data();
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        return source.dot(row, x, xOffset);
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        source.dequantizeRow(row, out, outOffset);
    }

    /** Elements of a vector weight ({@code [1, n]} or {@code [n, 1]}). */
    long vectorLength() {
        return (long) source.rows() * source.cols();
    }
}
