package dev.lathe.tools.quant;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeFrequencies;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Tokenizers;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * GPTQ and AWQ over a whole model, one decoder block at a time, on calibration windows. Memory
 * is the residual stream of the windows ({@code samples * seqLen * dim} floats) plus one block's
 * weights, activations and Hessians; the rest of the model stays memory-mapped.
 *
 * <p>Within a block the linears are handled in execution order, in the groups that share an
 * input: {q, k, v} (input: attention norm), {output} (input: attention), {gate, up} (input: FFN
 * norm), {down} (input: SwiGLU). GPTQ computes each group's inputs with the groups before it
 * already quantized, so later layers compensate earlier errors; AWQ searches scales on the
 * full-precision activations and folds them (as llm-awq does).
 */
final class CalibratedQuantization {
    /** Grid points of AWQ's alpha search (llm-awq's n_grid). */
    private static final int AWQ_GRID = 20;
    /** GPTQ's dampening: this fraction of the Hessian's mean diagonal (the reference default). */
    private static final double GPTQ_DAMPENING = 0.01;
    private static final int BLOCK_SIZE = 16;

    private CalibratedQuantization() {
    }

    static ModelQuantizer.Calibrated run(LoadedModel model, Map<String, WeightFormat> plan, QuantOptions options,
                                         Arena arena, PrintStream log) {
        if (model.vocabulary() == null) {
            throw new IllegalArgumentException(model.source() + " has no tokenizer data: calibration text cannot be tokenized");
        }
        LlamaConfig c = model.config();
        int seqLen = Math.min(options.seqLen(), c.contextLength());
        List<int[]> windows = CalibrationText.windows(options.calibration(), Tokenizers.create(model.vocabulary()),
                options.calibSamples(), seqLen);
        log.println(options.method().name().toLowerCase() + ": calibrating on " + CalibrationText.describe(windows)
                + " from " + options.calibration());
        Map<String, float[]> values = new HashMap<>();
        Map<String, MemorySegment> encoded = new HashMap<>();
        try (CpuBackend backend = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()));
             ProgressBar progress = new ProgressBarBuilder().setTaskName(options.method().name().toLowerCase())
                     .setInitialMax(c.layers()).setUnit(" layers", 1).setStyle(ProgressBarStyle.ASCII)
                     .setConsumer(new ConsoleProgressBarConsumer(log)).build()) {
            Session s = new Session(model, plan, options, arena, backend, windows, values, encoded);
            for (int l = 0; l < c.layers(); l++) {
                s.block(l);
                progress.step();
            }
        }
        return new ModelQuantizer.Calibrated(values, encoded);
    }

    /** The state of one run: the residual streams of every window, and what has been decided. */
    private static final class Session {
        private final LoadedModel model;
        private final LlamaConfig c;
        private final Map<String, WeightFormat> plan;
        private final QuantOptions options;
        private final Arena arena;
        private final CpuBackend backend;
        private final List<int[]> windows;
        private final Map<String, float[]> values;
        private final Map<String, MemorySegment> encoded;
        private final HostTensor[] residual; // [window] (seqLen, dim)
        private final float[] ropeInvFreq;
        private final KvCache cache;
        private final BatchPlan batchPlan;
        private final int seqLen;

        Session(LoadedModel model, Map<String, WeightFormat> plan, QuantOptions options, Arena arena, CpuBackend backend,
                List<int[]> windows, Map<String, float[]> values, Map<String, MemorySegment> encoded) {
            this.model = model;
            this.c = model.config();
            this.plan = plan;
            this.options = options;
            this.arena = arena;
            this.backend = backend;
            this.windows = windows;
            this.values = values;
            this.encoded = encoded;
            this.seqLen = windows.getFirst().length;
            this.residual = new HostTensor[windows.size()];
            WeightMatrix embedding = model.tensor("token_embd.weight");
            for (int w = 0; w < windows.size(); w++) {
                residual[w] = new HostTensor(seqLen, c.dim());
                backend.embed(residual[w], embedding, windows.get(w));
            }
            this.ropeInvFreq = RopeFrequencies.compute(c.headDim(), c.ropeTheta(), c.ropeScaling(), ropeFactors(model));
            int blocks = (seqLen + BLOCK_SIZE - 1) / BLOCK_SIZE;
            int[] blockTable = new int[blocks];
            for (int i = 0; i < blocks; i++) {
                blockTable[i] = i;
            }
            this.cache = backend.allocateKvCache(1, blocks, BLOCK_SIZE, c.kvHeads(), c.headDim());
            this.batchPlan = BatchPlan.singleSequence(windows.getFirst(), 0, blockTable, BLOCK_SIZE, false);
        }

        private static float[] ropeFactors(LoadedModel model) {
            WeightMatrix f = model.optionalTensor("rope_freqs.weight");
            if (f == null) {
                return null;
            }
            float[] factors = new float[f.rows() * f.cols()];
            f.dequantizeRow(0, factors, 0);
            return factors;
        }

        /** One decoder block: its four groups of linears in execution order; the residual streams advance. */
        void block(int l) {
            String p = "blk." + l + ".";
            int n = windows.size();
            float[] attnNorm = vector(p + "attn_norm.weight");
            float[] ffnNorm = vector(p + "ffn_norm.weight");

            HostTensor[] h = new HostTensor[n];
            for (int w = 0; w < n; w++) {
                h[w] = rmsNorm(residual[w], attnNorm);
            }
            String[] qkv = {p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"};
            Map<String, float[]> used = quantizeGroup(qkv, h, p + "attn_norm.weight", null);

            HostTensor[] att = new HostTensor[n];
            for (int w = 0; w < n; w++) {
                att[w] = attention(h[w], used.get(qkv[0]), used.get(qkv[1]), used.get(qkv[2]), p);
            }
            // AWQ folds the output projection's scales into V's rows, which is exact only when each
            // attention output channel comes from its own V channel (no grouped-query sharing).
            String foldInto = c.kvHeads() == c.heads() && !c.qkvBias() ? qkv[2] : null;
            String[] wo = {p + "attn_output.weight"};
            used.putAll(quantizeGroup(wo, att, null, foldInto));
            for (int w = 0; w < n; w++) {
                backend.add(residual[w], matmul(att[w], used.get(wo[0]), c.dim(), c.qDim()));
            }

            for (int w = 0; w < n; w++) {
                h[w] = rmsNorm(residual[w], ffnNorm);
            }
            String[] gateUp = {p + "ffn_gate.weight", p + "ffn_up.weight"};
            used.putAll(quantizeGroup(gateUp, h, p + "ffn_norm.weight", null));
            HostTensor[] act = new HostTensor[n];
            for (int w = 0; w < n; w++) {
                act[w] = matmul(h[w], used.get(gateUp[0]), c.ffnDim(), c.dim());
                backend.swiglu(act[w], matmul(h[w], used.get(gateUp[1]), c.ffnDim(), c.dim()));
            }
            String[] down = {p + "ffn_down.weight"};
            used.putAll(quantizeGroup(down, act, null, gateUp[1]));
            for (int w = 0; w < n; w++) {
                backend.add(residual[w], matmul(act[w], used.get(down[0]), c.dim(), c.ffnDim()));
            }
        }

        /**
         * Decides the linears {@code names} that share the inputs {@code x} (one tensor per window)
         * and returns the weights the calibration forward should use from here on: GPTQ's
         * quantized values, or (AWQ) the full-precision ones. AWQ folds 1/s into the vector
         * {@code foldNorm} or the rows of the linear {@code foldRows} when one is given.
         */
        Map<String, float[]> quantizeGroup(String[] names, HostTensor[] x, String foldNorm, String foldRows) {
            Map<String, float[]> used = new HashMap<>();
            int k = model.tensor(names[0]).cols();
            List<String> grouped = new ArrayList<>();
            for (String name : names) {
                used.put(name, current(name));
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
                values.put(name, Awq.scaleColumns(used.get(name), model.tensor(name).rows(), k, s));
            }
            if (foldNorm != null) {
                float[] norm = current(foldNorm);
                for (int i = 0; i < k; i++) {
                    norm[i] /= s[i];
                }
                values.put(foldNorm, norm);
            } else {
                float[] previous = current(foldRows);
                int cols = model.tensor(foldRows).cols();
                for (int r = 0; r < k; r++) {
                    for (int i = 0; i < cols; i++) {
                        previous[r * cols + i] /= s[r];
                    }
                }
                values.put(foldRows, previous);
            }
            return used;
        }

        /** The weights of {@code name} as decided so far (AWQ may have rescaled them), f32. */
        private float[] current(String name) {
            float[] v = values.get(name);
            if (v != null) {
                return v.clone();
            }
            WeightMatrix w = model.tensor(name);
            float[] out = new float[w.rows() * w.cols()];
            for (int r = 0; r < w.rows(); r++) {
                w.dequantizeRow(r, out, r * w.cols());
            }
            return out;
        }

        private float[] vector(String name) {
            return current(name);
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

        private HostTensor rmsNorm(HostTensor x, float[] weight) {
            HostTensor out = new HostTensor(x.rows(), x.cols());
            backend.rmsNorm(out, x, f32("norm", weight, 1, weight.length), c.rmsNormEps());
            return out;
        }

        private HostTensor matmul(HostTensor x, float[] w, int rows, int cols) {
            HostTensor out = new HostTensor(x.rows(), rows);
            backend.matmul(out, x, f32("linear", w, rows, cols));
            return out;
        }

        private HostTensor attention(HostTensor h, float[] wq, float[] wk, float[] wv, String prefix) {
            HostTensor q = matmul(h, wq, c.qDim(), c.dim());
            HostTensor k = matmul(h, wk, c.kvDim(), c.dim());
            HostTensor v = matmul(h, wv, c.kvDim(), c.dim());
            if (c.qkvBias()) {
                backend.addBias(q, model.tensor(prefix + "attn_q.bias"));
                backend.addBias(k, model.tensor(prefix + "attn_k.bias"));
                backend.addBias(v, model.tensor(prefix + "attn_v.bias"));
            }
            backend.rope(q, c.heads(), c.headDim(), batchPlan.positions(), ropeInvFreq, c.ropeStyle());
            backend.rope(k, c.kvHeads(), c.headDim(), batchPlan.positions(), ropeInvFreq, c.ropeStyle());
            backend.writeKv(cache, 0, k, v, batchPlan.slotMapping());
            HostTensor out = new HostTensor(h.rows(), c.qDim());
            backend.attention(out, q, cache, 0, batchPlan, c.heads(), (float) (1.0 / Math.sqrt(c.headDim())));
            return out;
        }

        private WeightMatrix f32(String name, float[] values, int rows, int cols) {
            MemorySegment data = MemorySegment.ofArray(values);
            return WeightMatrices.of(name, GgmlType.F32, rows, cols, data);
        }
    }
}
