package dev.lathe.tools.quant;

/** The quantization methods of {@code lathe quantize}. */
public enum QuantMethod {
    /** Round to nearest: INT8 per output channel (8 bits) or INT2/3/4 group-wise. */
    RTN(false),
    Q8_0(false),
    Q4_0(false),
    Q4_K(false),
    Q5_K(false),
    Q6_K(false),
    /** llama.cpp's Q4_K_M mix: Q4_K, with Q6_K for the output head and some attn_v / ffn_down ({@link TensorPlanner}). */
    Q4_K_M(false),
    /** llama.cpp's Q5_K_M mix: as Q4_K_M, around Q5_K. */
    Q5_K_M(false),
    /** NormalFloat-4, absmax per group (64 by default). */
    NF4(false),
    /** GPTQ: second-order error compensation from calibration activations, then group-wise INT. */
    GPTQ(true),
    /** AWQ: activation-aware per-input-channel scales folded into the preceding norm, then group-wise INT. */
    AWQ(true);

    /** True when the method needs calibration text. */
    public final boolean needsCalibration;

    QuantMethod(boolean needsCalibration) {
        this.needsCalibration = needsCalibration;
    }

    public boolean writesGgmlType() {
        return this == Q8_0 || this == Q4_0 || this == Q4_K || this == Q5_K || this == Q6_K || this == Q4_K_M || this == Q5_K_M;
    }
}
