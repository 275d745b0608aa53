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

    DeviceTensor(int rows, int cols, DeviceMemoryPool.Block block) {
        this.rows = rows;
        this.cols = cols;
        this.address = block.address;
        DeviceMemoryPool.releaseWhenUnreachable(this, block);
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
