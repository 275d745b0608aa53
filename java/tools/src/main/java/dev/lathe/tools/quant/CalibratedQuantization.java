package dev.lathe.tools.quant;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Tokenizers;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * GPTQ and AWQ over a whole model, one decoder block at a time ({@link BlockwiseCalibration}), on
 * calibration windows. GPTQ computes each group's inputs with the groups before it already
 * quantized, so later layers compensate earlier errors; AWQ searches scales on the full-precision
 * activations and folds them (as llm-awq does).
 */
final class CalibratedQuantization implements BlockwiseCalibration.Decider {
    /** Grid points of AWQ's alpha search (llm-awq's n_grid). */
    private static final int AWQ_GRID = 20;
    /** GPTQ's dampening: this fraction of the Hessian's mean diagonal (the reference default). */
    static final double GPTQ_DAMPENING = 0.01;

    private final LoadedModel model;
    private final BlockwiseCalibration walk;
    private final Map<String, WeightFormat> plan;
    private final QuantOptions options;
    private final Arena arena;
    private final Map<String, MemorySegment> encoded = new HashMap<>();

    private CalibratedQuantization(BlockwiseCalibration walk, Map<String, WeightFormat> plan, QuantOptions options, Arena arena) {
        this.model = walk.model();
        this.walk = walk;
        this.plan = plan;
        this.options = options;
        this.arena = arena;
    }

    static ModelQuantizer.Calibrated run(LoadedModel model, Map<String, WeightFormat> plan, QuantOptions options,
                                         Arena arena, PrintStream log) {
        List<int[]> windows = CalibrationText.windowsFor(model, options.calibration(), options.calibSamples(), options.seqLen());
        String task = options.method().name().toLowerCase();
        log.println(task + ": calibrating on " + CalibrationText.describe(windows) + " from " + options.calibration());
        try (CpuBackend backend = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()))) {
            BlockwiseCalibration walk = new BlockwiseCalibration(model, windows, backend);
            CalibratedQuantization q = new CalibratedQuantization(walk, plan, options, arena);
            walk.run(q, task, log);
            return new ModelQuantizer.Calibrated(walk.replaced(), q.encoded);
        }
    }

    /**
     * Decides the linears {@code names} that share the inputs {@code x} (one tensor per window)
     * and returns the weights the calibration forward should use from here on: GPTQ's
     * quantized values, or (AWQ) the full-precision ones. AWQ folds 1/s into the vector
     * {@code foldNorm} or the rows of the linear {@code foldRows} when one is given.
     */
    @Override
    public Map<String, float[]> decide(String[] names, HostTensor[] x, String foldNorm, String foldRows) {
        Map<String, float[]> used = new HashMap<>();
        int k = model.tensor(names[0]).cols();
        List<String> grouped = new ArrayList<>();
        for (String name : names) {
            used.put(name, walk.current(name));
            if (plan.get(name) instanceof LatheFormat f && f.kind() == LatheFormat.Kind.INT_GROUP) {
                grouped.add(name);
            }
        }
        if (grouped.isEmpty()) {
            return used; // 8-bit fallback or kept: RTN when written
        }
        LatheFormat format = (LatheFormat) plan.get(grouped.getFirst());
        if (options.method() == QuantMethod.GPTQ) {
            double[] hessian = new double[k * k];
            for (HostTensor t : x) {
                Gptq.accumulateHessian(hessian, t.data(), 0, t.rows(), k);
            }
            Gptq.symmetrize(hessian, k);
            for (String name : grouped) {
                WeightMatrix w = model.tensor(name);
                Gptq.Result r = Gptq.quantize(used.get(name), w.rows(), k, hessian.clone(), format, GPTQ_DAMPENING,
                        options.actOrder());
                encoded.put(name, pack(r, format));
                used.put(name, r.dequantized());
            }
            return used;
        }
        if (foldNorm == null && foldRows == null) {
            return used; // AWQ without a place to fold the scales: plain RTN
        }
        int seqLen = x[0].rows();
        int tokens = x.length * seqLen;
        float[] stacked = new float[tokens * k];
        for (int w = 0; w < x.length; w++) {
            System.arraycopy(x[w].data(), 0, stacked, w * seqLen * k, seqLen * k);
        }
        List<Awq.Linear> linears = new ArrayList<>();
        for (String name : grouped) {
            linears.add(new Awq.Linear(used.get(name), model.tensor(name).rows(), k));
        }
        Awq.Search search = Awq.searchScales(linears, stacked, tokens, format, AWQ_GRID);
        float[] s = search.scales();
        for (String name : grouped) {
            walk.replace(name, Awq.scaleColumns(used.get(name), model.tensor(name).rows(), k, s));
        }
        if (foldNorm != null) {
            float[] norm = walk.current(foldNorm);
            for (int i = 0; i < k; i++) {
                norm[i] /= s[i];
            }
            walk.replace(foldNorm, norm);
        } else {
            float[] previous = walk.current(foldRows);
            int cols = model.tensor(foldRows).cols();
            for (int r = 0; r < k; r++) {
                for (int i = 0; i < cols; i++) {
                    previous[r * cols + i] /= s[r];
                }
            }
            walk.replace(foldRows, previous);
        }
        return used;
    }

    private MemorySegment pack(Gptq.Result r, LatheFormat format) {
        long rowBytes = format.rowBytes(r.cols());
        MemorySegment out = arena.allocate(rowBytes * r.rows(), 8);
        int groups = r.cols() / format.groupSize();
        byte[] rowLevels = new byte[r.cols()];
        for (int row = 0; row < r.rows(); row++) {
            System.arraycopy(r.levels(), row * r.cols(), rowLevels, 0, r.cols());
            LatheEncoder.packIntGroupRow(format, rowLevels, r.rowGrids(row, groups), r.cols(), out, row * rowBytes);
        }
        return out;
    }
}
