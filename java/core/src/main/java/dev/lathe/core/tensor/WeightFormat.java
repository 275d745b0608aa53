package dev.lathe.core.tensor;

/**
 * How a {@link WeightMatrix} stores its values: one of ggml's types ({@link GgmlType}, the GGUF
 * block formats), or one of Lathe's own quantized formats ({@link LatheFormat}: INT8 per output
 * channel, INT2/3/4 group-wise with a scale and zero point, NF4).
 */
// NOTE: a sealed interface over the existing enum rather than new GgmlType constants: GgmlType
// keeps exactly ggml's ids and meaning (GGUF readers, the CUDA backend's dispatch on type()),
// while Lathe's formats carry parameters (bits, group size, zero point) an enum cannot.
// Backends switch on format() exhaustively; type() stays valid for every ggml-typed matrix.
public sealed interface WeightFormat permits GgmlType, LatheFormat {

    /** A short display name, e.g. {@code Q4_K} or {@code INT4-g32}. */
    String name();
}
