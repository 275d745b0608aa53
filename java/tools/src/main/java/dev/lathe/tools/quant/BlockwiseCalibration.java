package dev.lathe.tools.quant;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeFrequencies;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The calibration forward shared by the layer-by-layer methods (GPTQ, AWQ, SparseGPT, Wanda, the
 * structured importance scores): the model runs over calibration windows one decoder block at a
 * time, and within a block the linears are offered to a {@link Decider} in execution order, in
 * the groups that share an input: {q, k, v} (input: attention norm), {output} (input: attention),
 * {gate, up} (input: FFN norm), {down} (input: SwiGLU). The decider returns the weights the forward
 * goes on with, so later groups see earlier decisions (quantized or pruned) in their inputs.
 *
 * <p>Memory is the residual stream of the windows ({@code windows * seqLen * dim} floats) plus
 * one block's weights, activations and the decider's working set; the rest of the model stays
 * memory-mapped, and every f32 weight it holds is one it replaced.
 */
public final class BlockwiseCalibration {
    private static final int BLOCK_SIZE = 16;

    /** What a method does with each group of linears, and (optionally) with each block's streams. */
    public interface Decider {
        /**
         * Decides the linears {@code names} that share the inputs {@code x} (one {@code [seqLen, K]}
         * tensor per window) and returns the weights, f32 {@code [rows, K]} by name, the
         * calibration forward should use from here on. {@code foldNorm} / {@code foldRows} name
         * where a per-input scale could be folded (AWQ): the norm vector feeding the group, or
         * the linear whose rows produce its input; either may be null.
         */
        Map<String, float[]> decide(String[] names, HostTensor[] x, String foldNorm, String foldRows);

        /** Called after block {@code layer} with its input and output residual streams ({@code [window] (seqLen, dim)}). */
        default void blockDone(int layer, HostTensor[] input, HostTensor[] output) {
        }
    }

    private final LoadedModel model;
    private final LlamaConfig c;
    private final List<int[]> windows;
    private final CpuBackend backend;
    private final Map<String, float[]> replaced = new HashMap<>();
    private final HostTensor[] residual; // [window] (seqLen, dim)
    private final float[] ropeInvFreq;   // [headDim / 2]
    private final KvCache cache;
    private final BatchPlan batchPlan;

    /** Embeds {@code windows} (equal lengths) with {@code model}'s token table; {@code backend} does the arithmetic. */
    public BlockwiseCalibration(LoadedModel model, List<int[]> windows, CpuBackend backend) {
        this.model = model;
        this.c = model.config();
        this.windows = windows;
        this.backend = backend;
        int seqLen = windows.getFirst().length;
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

    /** Runs every block through {@code decider}, with a progress bar named {@code task} over layers on {@code log}. */
    public void run(Decider decider, String task, PrintStream log) {
        try (ProgressBar progress = new ProgressBarBuilder().setTaskName(task)
                .setInitialMax(c.layers()).setUnit(" layers", 1).setStyle(ProgressBarStyle.ASCII)
                .setConsumer(new ConsoleProgressBarConsumer(log)).build()) {
            for (int l = 0; l < c.layers(); l++) {
                block(l, decider);
                progress.step();
            }
        }
    }

    /** The f32 values a decider put in place of the model's (by tensor name). */
    public Map<String, float[]> replaced() {
        return replaced;
    }

    /** Replaces {@code name}'s values for the rest of the run and in {@link #replaced()}. */
    public void replace(String name, float[] values) {
        replaced.put(name, values);
    }

    /** The weights of {@code name} as decided so far, f32 {@code [rows, cols]}, a fresh copy. */
    public float[] current(String name) {
        float[] v = replaced.get(name);
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

    public LoadedModel model() {
        return model;
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
    private void block(int l, Decider decider) {
        String p = "blk." + l + ".";
        int n = windows.size();
        HostTensor[] input = new HostTensor[n];
        for (int w = 0; w < n; w++) {
            input[w] = new HostTensor(residual[w].data().clone(), residual[w].rows(), residual[w].cols());
        }
        float[] attnNorm = current(p + "attn_norm.weight");
        HostTensor[] h = new HostTensor[n];
        for (int w = 0; w < n; w++) {
            h[w] = rmsNorm(residual[w], attnNorm);
        }
        String[] qkv = {p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"};
        Map<String, float[]> used = new HashMap<>(decider.decide(qkv, h, p + "attn_norm.weight", null));

        HostTensor[] att = new HostTensor[n];
        for (int w = 0; w < n; w++) {
            att[w] = attention(h[w], used.get(qkv[0]), used.get(qkv[1]), used.get(qkv[2]), p);
        }
        // NOTE: a scale folded into the output projection's input must go into V's rows, which is
        // exact only when each attention output channel comes from its own V channel (no grouped-query sharing).
        String foldInto = c.kvHeads() == c.heads() && !c.qkvBias() ? qkv[2] : null;
        String[] wo = {p + "attn_output.weight"};
        used.putAll(decider.decide(wo, att, null, foldInto));
        for (int w = 0; w < n; w++) {
            backend.add(residual[w], matmul(att[w], used.get(wo[0]), c.dim(), c.qDim()));
        }

        float[] ffnNorm = current(p + "ffn_norm.weight");
        for (int w = 0; w < n; w++) {
            h[w] = rmsNorm(residual[w], ffnNorm);
        }
        String[] gateUp = {p + "ffn_gate.weight", p + "ffn_up.weight"};
        used.putAll(decider.decide(gateUp, h, p + "ffn_norm.weight", null));
        HostTensor[] act = new HostTensor[n];
        for (int w = 0; w < n; w++) {
            act[w] = matmul(h[w], used.get(gateUp[0]), c.ffnDim(), c.dim());
            backend.swiglu(act[w], matmul(h[w], used.get(gateUp[1]), c.ffnDim(), c.dim()));
        }
        String[] down = {p + "ffn_down.weight"};
        used.putAll(decider.decide(down, act, null, gateUp[1]));
        for (int w = 0; w < n; w++) {
            backend.add(residual[w], matmul(act[w], used.get(down[0]), c.dim(), c.ffnDim()));
        }
        decider.blockDone(l, input, residual);
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

    private static WeightMatrix f32(String name, float[] values, int rows, int cols) {
        MemorySegment data = MemorySegment.ofArray(values);
        return WeightMatrices.of(name, GgmlType.F32, rows, cols, data);
    }
}
