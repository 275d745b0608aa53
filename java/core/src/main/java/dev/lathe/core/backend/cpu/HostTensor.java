package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.Tensor;

/** An activation matrix {@code [rows, cols]} in a Java array, row-major. */
public record HostTensor(float[] data, int rows, int cols) implements Tensor {

    public HostTensor(int rows, int cols) {
        this(new float[Math.multiplyExact(rows, cols)], rows, cols);
    }

    public int offset(int row) {
        return row * cols;
    }
}
