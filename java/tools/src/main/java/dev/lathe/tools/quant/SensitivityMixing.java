package dev.lathe.tools.quant;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Mixed precision by measured sensitivity ({@code lathe quantize --mixed sensitivity --bpw-budget B}).
 *
 * <p>Candidates: the decoder blocks' linears that {@link TensorPlanner}'s rule gives the method's
 * low-bit format. For each, on the calibration windows ({@link BlockwiseCalibration}, the
 * full-precision forward: the activations do not see other tensors' choices), the relative output
 * error of each format {@code f} (the low one and {@link #HIGH}, INT8 per channel, both by RTN):
 * {@code ||(W - Q_f(W)) X^T||_F^2 / ||W X^T||_F^2} over all calibration tokens' inputs {@code X},
 * computed as {@code sum_r e_r^T H e_r / sum_r w_r^T H w_r} with {@code H = X^T X}.
 *
 * <p>Choice ({@link #choose}): every candidate starts low; upgrades are taken greedily by error
 * reduction per extra bit, largest first, each when it still fits the budget (a smaller one may
 * fit after a larger one did not). The budget is in bits per weight over the candidates alone
 * (their stored bytes, scales included, over their parameters); the tensors the rule fixes
 * (embedding, head, 8-bit fallbacks, norms) are outside it. Objective: the sum of the candidates'
 * relative output errors (each tensor counts the same, whatever its size or depth).
 */
public final class SensitivityMixing {
    /** The higher-precision format a candidate may be upgraded to. */
    public static final LatheFormat HIGH = LatheFormat.int8Channel();

    private SensitivityMixing() {
    }

    /** One candidate tensor: its size in each format and its measured relative output error in each. */
    public record Candidate(String name, long params, long lowBytes, long highBytes, double lowError, double highError) {
        double gainPerBit() {
            return (lowError - highError) / Math.max(1, 8 * (highBytes - lowBytes));
        }
    }

    /**
     * The candidates upgraded to {@link #HIGH} for a budget of {@code bitsPerWeight} over all candidates.
     *
     * @throws IllegalArgumentException when the budget is below the all-low or above the all-high bits per weight
     */
    public static Set<String> choose(List<Candidate> candidates, double bitsPerWeight) {
        if (candidates.isEmpty()) {
            throw new IllegalArgumentException("--mixed sensitivity: no tensor has the low-bit format, nothing to choose");
        }
        long params = 0;
        long lowBytes = 0;
        long highBytes = 0;
        for (Candidate c : candidates) {
            params += c.params();
            lowBytes += c.lowBytes();
            highBytes += c.highBytes();
        }
        double lowBpw = 8.0 * lowBytes / params;
        double highBpw = 8.0 * highBytes / params;
        if (!(bitsPerWeight >= lowBpw && bitsPerWeight <= highBpw)) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "--bpw-budget %.4f is outside [%.4f, %.4f]: the mixed tensors take %.4f bits per weight all low-bit"
                    + " and %.4f all %s", bitsPerWeight, lowBpw, highBpw, lowBpw, highBpw, HIGH.name()));
        }
        // whole bits; the relative slack keeps a budget of exactly the all-high figure from rounding below it
        long budgetBits = (long) Math.floor(bitsPerWeight * params * (1 + 1e-12));
        long usedBits = 8 * lowBytes;
        List<Candidate> order = new ArrayList<>(candidates);
        order.sort(Comparator.comparingDouble(Candidate::gainPerBit).reversed().thenComparing(Candidate::name));
        Set<String> upgraded = new TreeSet<>();
        for (Candidate c : order) {
            long extra = 8 * (c.highBytes() - c.lowBytes());
            if (c.lowError() > c.highError() && usedBits + extra <= budgetBits) {
                upgraded.add(c.name());
                usedBits += extra;
            }
        }
        return upgraded;
    }

    /** {@code ||(W - Q) X^T||_F^2 / ||W X^T||_F^2} from {@code H = X^T X} ({@code [k, k]}), {@code W, Q [rows, k]}. */
    public static double relativeOutputError(float[] w, float[] q, int rows, int k, double[] hessian) {
        double error = 0;
        double signal = 0;
        double[] e = new double[k];
        double[] v = new double[k];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < k; i++) {
                v[i] = w[r * k + i];
                e[i] = v[i] - q[r * k + i];
            }
            error += quadratic(e, hessian, k);
            signal += quadratic(v, hessian, k);
        }
        return signal == 0 ? 0 : error / signal;
    }

    private static double quadratic(double[] x, double[] h, int k) {
        double sum = 0;
        for (int i = 0; i < k; i++) {
            if (x[i] == 0) {
                continue;
            }
            double row = 0;
            for (int j = 0; j < k; j++) {
                row += h[i * k + j] * x[j];
            }
            sum += x[i] * row;
        }
        return sum;
    }

    /** {@code values [rows, k]} encoded in {@code format} by RTN and decoded again. */
    static float[] roundTrip(LatheFormat format, float[] values, int rows, int k) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = LatheEncoder.encode(format, values, rows, k, arena);
            WeightMatrix m = WeightMatrices.of("candidate", format, rows, k, data);
            float[] out = new float[rows * k];
            for (int r = 0; r < rows; r++) {
                m.dequantizeRow(r, out, r * k);
            }
            return out;
        }
    }

    /** The candidate for {@code w [rows, k]} given its inputs' {@code H = X^T X}. */
    static Candidate measure(String name, float[] w, int rows, int k, LatheFormat low, double[] hessian) {
        return new Candidate(name, (long) rows * k, low.matrixBytes(rows, k), HIGH.matrixBytes(rows, k),
                relativeOutputError(w, roundTrip(low, w, rows, k), rows, k, hessian),
                relativeOutputError(w, roundTrip(HIGH, w, rows, k), rows, k, hessian));
    }

    /**
     * The plan with the chosen candidates moved to {@link #HIGH}: measures every candidate of
     * {@code plan} on the calibration text of {@code options} and chooses for {@code bitsPerWeight}.
     */
    static Map<String, WeightFormat> refine(LoadedModel model, Map<String, WeightFormat> plan, QuantOptions options,
                                            double bitsPerWeight, PrintStream log) {
        if (!(options.target() instanceof LatheFormat low) || low.equals(HIGH)
                || (options.method() != QuantMethod.RTN && options.method() != QuantMethod.NF4)) {
            throw new IllegalArgumentException("--mixed sensitivity mixes a low-bit Lathe format with INT8: use --method rtn"
                    + " (--bits 2, 3 or 4) or nf4");
        }
        if (options.calibration() == null) {
            throw new IllegalArgumentException("--mixed sensitivity measures on calibration text: pass --calib FILE");
        }
        List<int[]> windows = CalibrationText.windowsFor(model, options.calibration(), options.calibSamples(), options.seqLen());
        log.println("sensitivity: measuring on " + CalibrationText.describe(windows) + " from " + options.calibration());
        List<Candidate> candidates = new ArrayList<>();
        try (CpuBackend backend = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()))) {
            BlockwiseCalibration walk = new BlockwiseCalibration(model, windows, backend);
            walk.run((names, x, foldNorm, foldRows) -> {
                Map<String, float[]> used = new HashMap<>();
                double[] hessian = null;
                for (String name : names) {
                    float[] w = walk.current(name);
                    used.put(name, w);
                    if (!low.equals(plan.get(name))) {
                        continue;
                    }
                    WeightMatrix m = model.tensor(name);
                    if (hessian == null) {
                        hessian = new double[m.cols() * m.cols()];
                        for (HostTensor t : x) {
                            Gptq.accumulateHessian(hessian, t.data(), 0, t.rows(), m.cols());
                        }
                        Gptq.symmetrize(hessian, m.cols());
                    }
                    candidates.add(measure(name, w, m.rows(), m.cols(), low, hessian));
                }
                return used;
            }, "sensitivity", log);
        }
        Set<String> upgraded = choose(candidates, bitsPerWeight);
        log.printf(Locale.ROOT, "sensitivity: %d of %d tensors to %s (budget %.3f bits/weight)%n", upgraded.size(),
                candidates.size(), HIGH.name(), bitsPerWeight);
        for (Candidate c : candidates) {
            log.printf(Locale.ROOT, "  %-28s error %s %.5f, %s %.6f -> %s%n", c.name(), low.name(), c.lowError(), HIGH.name(),
                    c.highError(), upgraded.contains(c.name()) ? HIGH.name() : low.name());
        }
        Map<String, WeightFormat> refined = new LinkedHashMap<>(plan);
        for (String name : upgraded) {
            refined.put(name, HIGH);
        }
        return refined;
    }
}
