package dev.lathe.core.backend;

/**
 * An f32 activation matrix {@code [rows, cols]}, row-major, owned by a {@link Backend} (host
 * memory for the CPU backend, device memory for CUDA). Rows are tokens; columns are features.
 */
public interface Tensor {
    int rows();

    int cols();
}
