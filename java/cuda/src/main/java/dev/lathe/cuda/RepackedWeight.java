package dev.lathe.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A weight in a kernel layout, still in host memory: what {@link WeightRepacker} makes and the
 * backend copies to the device once.
 *
 * @param layout the kernel layout
 * @param rows   output features
 * @param cols   input features
 * @param values {@code layout.valuesBytes(rows, cols)} bytes (see {@link KernelLayout})
 * @param scales {@code layout.scalesBytes(rows, cols)} bytes of little-endian halves, or
 *               {@link MemorySegment#NULL} for dense layouts
 */
record RepackedWeight(KernelLayout layout, int rows, int cols, MemorySegment values, MemorySegment scales) {
}
