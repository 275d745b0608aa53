package dev.lathe.tools.quant;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;

import java.nio.file.Path;
import java.util.Objects;

/**
 * What {@code lathe quantize} was asked for, validated on construction.
 *
 * @param method       the method
 * @param bits         RTN: 2, 3, 4 or 8 (8 is INT8 per channel); GPTQ / AWQ: 2, 3 or 4; ignored by the others
 * @param groupSize    values per group along K for INT and NF4 (32, 64, 128, ...)
 * @param zeroPoint    INT group-wise: asymmetric levels with a zero point (else symmetric)
 * @param calibration  calibration text (GPTQ, AWQ), or null
 * @param calibSamples calibration windows to use
 * @param seqLen       tokens per calibration window
 * @param actOrder     GPTQ: quantize columns by decreasing Hessian diagonal
 * @param doubleQuant  NF4: double-quantize the absmax values (QLoRA; {@link LatheFormat#nf4DoubleQuant})
 */
public record QuantOptions(QuantMethod method, int bits, int groupSize, boolean zeroPoint, Path calibration,
                           int calibSamples, int seqLen, boolean actOrder, boolean doubleQuant) {

    public QuantOptions(QuantMethod method, int bits, int groupSize, boolean zeroPoint, Path calibration,
                        int calibSamples, int seqLen, boolean actOrder) {
        this(method, bits, groupSize, zeroPoint, calibration, calibSamples, seqLen, actOrder, false);
    }

    public QuantOptions {
        Objects.requireNonNull(method, "method");
        if (doubleQuant && method != QuantMethod.NF4) {
            throw new IllegalArgumentException("--double-quant applies to --method nf4 only, not " + method.name().toLowerCase());
        }
        switch (method) {
            case RTN -> {
                if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
                    throw new IllegalArgumentException("--bits " + bits + " is not supported by rtn (2, 3, 4 or 8)");
                }
            }
            case GPTQ, AWQ -> {
                if (bits < 2 || bits > 4) {
                    throw new IllegalArgumentException("--bits " + bits + " is not supported by " + method.name().toLowerCase()
                            + " (2, 3 or 4)");
                }
            }
            default -> { }
        }
        if (usesGroups(method, bits)) {
            target(method, bits, groupSize, zeroPoint, doubleQuant); // throws on a bad group size
        }
        if (method.needsCalibration) {
            if (calibration == null) {
                throw new IllegalArgumentException(method.name().toLowerCase() + " needs calibration text: pass --calib FILE");
            }
            if (calibSamples < 1) {
                throw new IllegalArgumentException("--calib-samples must be at least 1, not " + calibSamples);
            }
            if (seqLen < 2) {
                throw new IllegalArgumentException("--seq-len must be at least 2, not " + seqLen);
            }
        }
    }

    /** Options for a method that needs nothing else, with the defaults (4 bits, group 32, zero point). */
    public static QuantOptions of(QuantMethod method) {
        return new QuantOptions(method, 4, method == QuantMethod.NF4 ? 64 : 32, true, null, 0, 0, false);
    }

    private static boolean usesGroups(QuantMethod method, int bits) {
        return method == QuantMethod.NF4 || method.needsCalibration || (method == QuantMethod.RTN && bits != 8);
    }

    private static WeightFormat target(QuantMethod method, int bits, int groupSize, boolean zeroPoint, boolean doubleQuant) {
        try {
            return switch (method) {
                case Q8_0 -> GgmlType.Q8_0;
                case Q4_0 -> GgmlType.Q4_0;
                case Q4_K, Q4_K_M -> GgmlType.Q4_K;
                case Q5_K, Q5_K_M -> GgmlType.Q5_K;
                case Q6_K -> GgmlType.Q6_K;
                case NF4 -> doubleQuant ? LatheFormat.nf4DoubleQuant(groupSize) : LatheFormat.nf4(groupSize);
                case RTN -> bits == 8 ? LatheFormat.int8Channel() : LatheFormat.intGroup(bits, groupSize, zeroPoint);
                case GPTQ, AWQ -> LatheFormat.intGroup(bits, groupSize, zeroPoint);
            };
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--group-size: " + e.getMessage(), e);
        }
    }

    /** The format the method writes for the matrices it quantizes. */
    public WeightFormat target() {
        return target(method, bits, groupSize, zeroPoint, doubleQuant);
    }
}
