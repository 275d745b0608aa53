package dev.lathe.cuda;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightFormat;
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
    final long values;  // device address of the values array (INT4_GROUP, NF4: the code words)
    final long scales;  // device address of the scales array (NF4: the absmax floats), 0 for dense layouts
    final long zeros;   // INT4_GROUP: device address of the zero points; SPARSE24: the tensor-core
                        // fragments (Sparse24MmaLayout), 0 when cols is no multiple of 64; else 0
    final int group;    // INT4_GROUP: values per scale and zero, else 0
    final long mmaMeta; // SPARSE24: the tensor-core metadata words (Sparse24MmaLayout), else 0

    DeviceWeight(WeightMatrix source, KernelLayout layout, long values, long scales) {
        this(source, layout, values, scales, 0, 0, 0);
    }

    DeviceWeight(WeightMatrix source, KernelLayout layout, long values, long scales, long zeros, int group) {
        this(source, layout, values, scales, zeros, group, 0);
    }

    DeviceWeight(WeightMatrix source, KernelLayout layout, long values, long scales, long zeros, int group,
                 long mmaMeta) {
        this.source = source;
        this.layout = layout;
        this.values = values;
        this.scales = scales;
        this.zeros = zeros;
        this.group = group;
        this.mmaMeta = mmaMeta;
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
    public WeightFormat format() {
        return source.format();
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
