package dev.lathe.cuda;

import dev.lathe.core.backend.Tensor;

/**
 * An f32 activation matrix {@code [rows, cols]}, row-major, in device memory at {@code address}.
 * Its block returns to the pool when the tensor is unreachable (the SPI has no free).
 */
final class DeviceTensor implements Tensor {
    private final int rows;
    private final int cols;
    final long address;
    private final Object owner; // what keeps the memory alive for a view; null otherwise

    DeviceTensor(int rows, int cols, DeviceMemoryPool.Block block) {
        this.rows = rows;
        this.cols = cols;
        this.address = block.address;
        this.owner = null;
        DeviceMemoryPool.releaseWhenUnreachable(this, block);
    }

    private DeviceTensor(int rows, int cols, long address, Object owner) {
        this.rows = rows;
        this.cols = cols;
        this.address = address;
        this.owner = owner;
    }

    /** A tensor over memory someone else owns and frees (a captured graph's buffers). */
    static DeviceTensor unowned(int rows, int cols, long address) {
        return new DeviceTensor(rows, cols, address, null);
    }

    /** The first {@code rows} rows of {@code t}, keeping {@code t} (and so its memory) reachable. */
    static DeviceTensor firstRows(DeviceTensor t, int rows) {
        if (rows < 0 || rows > t.rows) {
            throw new IllegalArgumentException(rows + " rows of " + t);
        }
        return rows == t.rows ? t : new DeviceTensor(rows, t.cols, t.address, t);
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    long elements() {
        return (long) rows * cols;
    }

    @Override
    public String toString() {
        return "DeviceTensor[" + rows + ", " + cols + "]";
    }
}
