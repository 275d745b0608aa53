package dev.lathe.tools.prune;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufTensorInfo;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.tools.eval.Perplexity;
import dev.lathe.tools.quant.BlockwiseCalibration;
import dev.lathe.tools.quant.CalibrationText;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SequencedMap;
import java.util.stream.IntStream;
import me.tongfei.progressbar.ProgressBar;

/**
 * Structured cuts that leave an ordinary, smaller model: whole attention heads, FFN neurons and
 * decoder blocks, scored on calibration text.
 * <ul>
 * <li>Heads ({@code --heads F}): the unit is a KV head with its whole query group (GQA), so the
 *     model stays grouped-query. Importance of group g in layer l = mean calibration NLL with
 *     that group masked (its query heads' columns of {@code attn_output} zeroed, which removes
 *     exactly their contribution) minus the unmasked NLL: {@code layers * kvHeads} calibration
 *     passes.</li>
 * <li>FFN neurons ({@code --ffn F}): importance of neuron j = {@code ||a_j||_2 * ||W_down[:, j]||_2},
 *     a_j its SwiGLU activation over the calibration tokens (Wanda's score summed over the
 *     column, a documented first-order estimate of the output change when the neuron goes).</li>
 * <li>Layers ({@code --drop-layers N}): Block Influence (ShortGPT, Men et al., 2024):
 *     {@code BI_l = 1 - mean_t cos(x_t, y_t)} for a block's input and output hidden states x, y;
 *     the N blocks with the lowest BI go.</li>
 * </ul>
 * All scores are computed on the unpruned model; the cuts are then applied together.
 */
// NOTE: every layer loses the same number of heads and neurons (the least important of that
// layer), rather than a global ranking with per-layer counts: LlamaConfig, the paged KV cache
// (one kvHeads for every layer's pool) and the CUDA backend all assume one shape for every
// layer, and GGUF's llama metadata has no standard per-layer head count. A global ranking
// would need all three to change.
final class StructuredPruning {
    private StructuredPruning() {
    }

    /** The cuts: per layer the kept KV heads and FFN neurons (sorted), and the kept layers. */
    record Plan(int[][] keptKvHeads, int[][] keptNeurons, int[] keptLayers) {
    }

    static PrunedModelWriter run(GgufFile gguf, LoadedModel model, PruneOptions options, Arena arena, PrintStream log,
                                 Map<String, Integer> counts, List<String> notes) {
        LlamaConfig c = model.config();
        int removeKv = count(options.heads(), c.kvHeads(), "--heads", "KV heads (each with its " + c.groupSize() + " query heads)");
        int removeNeurons = count(options.ffn(), c.ffnDim(), "--ffn", "FFN neurons");
        if (options.dropLayers() >= c.layers()) {
            throw new IllegalArgumentException("--drop-layers " + options.dropLayers() + " would remove every one of the model's "
                    + c.layers() + " layers");
        }
        List<int[]> windows = CalibrationText.windowsFor(model, options.calibration(), options.calibSamples(), options.seqLen());
        log.println("structured pruning: scoring on " + CalibrationText.describe(windows) + " from " + options.calibration());

        double[][] neuronScores = null;
        double[] blockInfluence = null;
        double[][] headLoss = null;
        try (CpuBackend backend = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()))) {
            if (removeNeurons > 0 || options.dropLayers() > 0) {
                Scores s = activationScores(model, windows, backend, log);
                neuronScores = s.neurons();
                blockInfluence = s.blockInfluence();
            }
            if (removeKv > 0) {
                headLoss = headMaskingLoss(model, windows, backend, log);
            }
        }
        int[][] keptKv = new int[c.layers()][];
        int[][] keptNeurons = new int[c.layers()][];
        for (int l = 0; l < c.layers(); l++) {
            keptKv[l] = headLoss == null ? IntStream.range(0, c.kvHeads()).toArray() : keepHighest(headLoss[l], c.kvHeads() - removeKv);
            keptNeurons[l] = neuronScores == null ? IntStream.range(0, c.ffnDim()).toArray()
                    : keepHighest(neuronScores[l], c.ffnDim() - removeNeurons);
        }
        int[] keptLayers = blockInfluence == null ? IntStream.range(0, c.layers()).toArray()
                : keepHighest(blockInfluence, c.layers() - options.dropLayers());
        if (blockInfluence != null) {
            notes.add("Block Influence per layer: " + Arrays.toString(round(blockInfluence)));
            notes.add("layers " + c.layers() + " -> " + keptLayers.length + ", kept " + Arrays.toString(keptLayers));
        }
        if (headLoss != null) {
            for (int l = 0; l < c.layers(); l++) {
                notes.add("layer " + l + " head-group NLL increase " + Arrays.toString(round(headLoss[l])) + ", kept KV heads "
                        + Arrays.toString(keptKv[l]));
            }
            notes.add("heads " + c.heads() + " -> " + (c.kvHeads() - removeKv) * c.groupSize() + ", KV heads " + c.kvHeads() + " -> "
                    + (c.kvHeads() - removeKv) + " per layer");
        }
        if (neuronScores != null && removeNeurons > 0) {
            notes.add("FFN " + c.ffnDim() + " -> " + (c.ffnDim() - removeNeurons) + " per layer");
        }
        return write(gguf, model, new Plan(keptKv, keptNeurons, keptLayers), arena, counts);
    }

    /** {@code round(fraction * total)}, checked to remove something but not everything. */
    static int count(double fraction, int total, String option, String what) {
        if (fraction == 0) {
            return 0;
        }
        int remove = (int) Math.round(fraction * total);
        if (remove >= total) {
            throw new IllegalArgumentException(option + " " + fraction + " would remove all " + total + " " + what);
        }
        if (remove == 0) {
            throw new IllegalArgumentException(option + " " + fraction + " of " + total + " " + what + " rounds to none: ask for at least "
                    + (0.5 / total));
        }
        return remove;
    }

    /** The indices of the {@code keep} highest scores, ascending (ties: the earlier index stays). */
    static int[] keepHighest(double[] score, int keep) {
        return IntStream.range(0, score.length).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -score[i]).thenComparingInt(i -> i))
                .limit(keep).mapToInt(Integer::intValue).sorted().toArray();
    }

    private static double[] round(double[] v) {
        return Arrays.stream(v).map(x -> Math.round(x * 1e4) / 1e4).toArray();
    }

    /** FFN neuron scores {@code [layer][ffnDim]} and Block Influence {@code [layer]} from one calibration pass. */
    record Scores(double[][] neurons, double[] blockInfluence) {
    }

    static Scores activationScores(LoadedModel model, List<int[]> windows, CpuBackend backend, PrintStream log) {
        LlamaConfig c = model.config();
        double[][] neurons = new double[c.layers()][];
        double[] influence = new double[c.layers()];
        BlockwiseCalibration walk = new BlockwiseCalibration(model, windows, backend);
        walk.run(new BlockwiseCalibration.Decider() {
            @Override
            public Map<String, float[]> decide(String[] names, HostTensor[] x, String foldNorm, String foldRows) {
                Map<String, float[]> used = new LinkedHashMap<>();
                for (String name : names) {
                    used.put(name, walk.current(name));
                }
                if (names[0].endsWith("ffn_down.weight")) {
                    int layer = Integer.parseInt(names[0].split("\\.")[1]);
                    int k = c.ffnDim();
                    double[] squares = ModelPruner.hessian(x, k, false);
                    float[] down = used.get(names[0]); // [dim, ffnDim]
                    double[] score = new double[k];
                    for (int j = 0; j < k; j++) {
                        double column = 0;
                        for (int r = 0; r < c.dim(); r++) {
                            column += (double) down[r * k + j] * down[r * k + j];
                        }
                        score[j] = Math.sqrt(squares[j]) * Math.sqrt(column);
                    }
                    neurons[layer] = score;
                }
                return used;
            }

            @Override
            public void blockDone(int layer, HostTensor[] input, HostTensor[] output) {
                influence[layer] = blockInfluence(input, output);
            }
        }, "scores", log);
        return new Scores(neurons, influence);
    }

    /** {@code 1 - mean_t cos(input_t, output_t)} over every token of every window. */
    static double blockInfluence(HostTensor[] input, HostTensor[] output) {
        double sum = 0;
        int tokens = 0;
        for (int w = 0; w < input.length; w++) {
            float[] a = input[w].data();
            float[] b = output[w].data();
            int dim = input[w].cols();
            for (int t = 0; t < input[w].rows(); t++) {
                double dot = 0;
                double na = 0;
                double nb = 0;
                for (int i = t * dim; i < (t + 1) * dim; i++) {
                    dot += (double) a[i] * b[i];
                    na += (double) a[i] * a[i];
                    nb += (double) b[i] * b[i];
                }
                sum += na == 0 || nb == 0 ? 1 : dot / Math.sqrt(na * nb);
                tokens++;
            }
        }
        return 1 - sum / tokens;
    }

    /** {@code [layer][kvHead]}: calibration NLL with that KV group's query heads masked, minus the unmasked NLL. */
    static double[][] headMaskingLoss(LoadedModel model, List<int[]> windows, CpuBackend backend, PrintStream log) {
        LlamaConfig c = model.config();
        int seqLen = windows.getFirst().length;
        int[] tokens = new int[windows.size() * seqLen];
        for (int w = 0; w < windows.size(); w++) {
            System.arraycopy(windows.get(w), 0, tokens, w * seqLen, seqLen);
        }
        double base = Perplexity.evaluate(new LlamaModel(model, backend), tokens, seqLen, seqLen).meanNll();
        double[][] increase = new double[c.layers()][c.kvHeads()];
        try (ProgressBar progress = ModelPruner.progress("head masks", c.layers(), log)) {
            for (int l = 0; l < c.layers(); l++) {
                String name = "blk." + l + ".attn_output.weight";
                float[] wo = ModelPruner.dequantize(model.tensor(name)); // [dim, qDim]
                for (int g = 0; g < c.kvHeads(); g++) {
                    float[] masked = wo.clone();
                    for (int r = 0; r < c.dim(); r++) {
                        Arrays.fill(masked, r * c.qDim() + g * c.groupSize() * c.headDim(),
                                r * c.qDim() + (g + 1) * c.groupSize() * c.headDim(), 0f);
                    }
                    SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>(model.tensors());
                    tensors.put(name, WeightMatrices.of(name, GgmlType.F32, c.dim(), c.qDim(), MemorySegment.ofArray(masked)));
                    // NOTE: a view sharing the model's mappings; never closed (that would close the model's arena).
                    LoadedModel view = new LoadedModel(model.source(), model.format(), c, tensors, model.vocabulary(), model.metadata(),
                            model.arena());
                    increase[l][g] = Perplexity.evaluate(new LlamaModel(view, backend), tokens, seqLen, seqLen).meanNll() - base;
                }
                progress.step();
            }
        }
        return increase;
    }

    /** The cut model: metadata with the new shapes, every kept tensor sliced and renumbered. */
    static PrunedModelWriter write(GgufFile gguf, LoadedModel model, Plan plan, Arena arena, Map<String, Integer> counts) {
        LlamaConfig c = model.config();
        String arch = gguf.metadata().string("general.architecture");
        int kv = plan.keptKvHeads()[0].length;
        int ffn = plan.keptNeurons()[0].length;
        Set<String> overridden = Set.of(arch + ".block_count", arch + ".attention.head_count", arch + ".attention.head_count_kv",
                arch + ".feed_forward_length", arch + ".attention.key_length", arch + ".attention.value_length");
        PrunedModelWriter writer = new PrunedModelWriter(gguf, arena, overridden);
        writer.metadata().putUint32(arch + ".block_count", plan.keptLayers().length);
        writer.metadata().putUint32(arch + ".attention.head_count", (long) kv * c.groupSize());
        writer.metadata().putUint32(arch + ".attention.head_count_kv", kv);
        writer.metadata().putUint32(arch + ".feed_forward_length", ffn);
        // NOTE: written explicitly: readers default the head width to dim / head_count, which a head cut changes.
        writer.metadata().putUint32(arch + ".attention.key_length", c.headDim());
        writer.metadata().putUint32(arch + ".attention.value_length", c.headDim());
        writer.metadata().putString("lathe.pruning.method", "structured");
        writer.metadata().putInt32Array("lathe.pruning.kept_layers", plan.keptLayers());

        int[] newIndex = new int[c.layers()];
        Arrays.fill(newIndex, -1);
        for (int i = 0; i < plan.keptLayers().length; i++) {
            newIndex[plan.keptLayers()[i]] = i;
        }
        for (GgufTensorInfo info : gguf.tensors().values()) {
            String name = info.name();
            WeightMatrix w = model.tensor(name);
            if (!name.startsWith("blk.")) {
                writer.copy(info, w, name);
                counts.merge("kept", 1, Integer::sum);
                continue;
            }
            int layer = Integer.parseInt(name.split("\\.")[1]);
            if (newIndex[layer] < 0) {
                counts.merge("dropped (layer)", 1, Integer::sum);
                continue;
            }
            String newName = "blk." + newIndex[layer] + name.substring(name.indexOf('.', 4));
            String kind = name.substring(name.indexOf('.', 4) + 1);
            int[] qRows = headRows(plan.keptKvHeads()[layer], c.groupSize(), c.headDim());
            int[] kvRows = headRows(plan.keptKvHeads()[layer], 1, c.headDim());
            int[] neurons = plan.keptNeurons()[layer];
            boolean headsCut = kv < c.kvHeads();
            boolean ffnCut = ffn < c.ffnDim();
            int[][] slice = switch (kind) { // {rows kept, cols kept}, null = all
                case "attn_q.weight", "attn_q.bias" -> headsCut ? new int[][] {qRows, null} : null;
                case "attn_k.weight", "attn_v.weight", "attn_k.bias", "attn_v.bias" -> headsCut ? new int[][] {kvRows, null} : null;
                case "attn_output.weight" -> headsCut ? new int[][] {null, qRows} : null;
                case "ffn_gate.weight", "ffn_up.weight" -> ffnCut ? new int[][] {neurons, null} : null;
                case "ffn_down.weight" -> ffnCut ? new int[][] {null, neurons} : null;
                default -> null;
            };
            if (slice == null) {
                writer.copy(info, w, newName);
                counts.merge("kept", 1, Integer::sum);
                continue;
            }
            boolean vector = kind.endsWith(".bias");
            float[] all = ModelPruner.dequantize(w);
            // a bias is one row of n values (or n rows of one); slice it as a vector
            int rows = vector ? 1 : w.rows();
            int cols = vector ? w.rows() * w.cols() : w.cols();
            int[] keepRows = vector ? new int[] {0} : slice[0] != null ? slice[0] : IntStream.range(0, rows).toArray();
            int[] keepCols = vector ? slice[0] : slice[1] != null ? slice[1] : IntStream.range(0, cols).toArray();
            float[] cut = new float[keepRows.length * keepCols.length];
            for (int r = 0; r < keepRows.length; r++) {
                for (int j = 0; j < keepCols.length; j++) {
                    cut[r * keepCols.length + j] = all[keepRows[r] * cols + keepCols[j]];
                }
            }
            WeightFormat format = vector ? GgmlType.F32 : PrunedModelWriter.writableLike(w.format(), keepCols.length);
            writer.put(newName, cut, keepRows.length, keepCols.length, format, vector);
            counts.merge("sliced", 1, Integer::sum);
        }
        return writer;
    }

    /** Rows (or columns) of the heads of the kept KV groups, {@code perGroup} heads of {@code headDim} each. */
    private static int[] headRows(int[] keptGroups, int perGroup, int headDim) {
        List<Integer> rows = new ArrayList<>();
        for (int g : keptGroups) {
            for (int i = g * perGroup * headDim; i < (g + 1) * perGroup * headDim; i++) {
                rows.add(i);
            }
        }
        return rows.stream().mapToInt(Integer::intValue).toArray();
    }
}
