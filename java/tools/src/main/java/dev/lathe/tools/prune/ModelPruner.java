package dev.lathe.tools.prune;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.backend.cpu.HostTensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufModelReader;
import dev.lathe.core.gguf.GgufTensorInfo;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.tools.quant.BlockwiseCalibration;
import dev.lathe.tools.quant.CalibrationText;
import dev.lathe.tools.quant.GgmlQuantizer;
import dev.lathe.tools.quant.Gptq;
import dev.lathe.tools.quant.TensorPlanner;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * {@code lathe prune}: reads a GGUF model, prunes it and writes a GGUF model, atomically.
 * Unstructured and N:M pruning (here) touches the linears of every block ({@code attn_q/k/v/output},
 * {@code ffn_gate/up/down}); the embedding, output head and norms stay. Structured cuts are
 * {@link StructuredPruning}'s.
 *
 * <p>Storage of pruned linears ({@link PruneOptions.Store}): 2:4 goes into the 2:4 format
 * (INT4 values with {@code --int4 G} where a row is a whole number of G-column groups, else F16
 * values where it is a whole number of 32-column metadata words); everything else is written
 * dense (INT4 group-wise with {@code --int4} where the groups fit, else the input's format) with
 * its zeros.
 *
 * <p>Written metadata: everything the input had except {@code general.file_type} and Lathe's
 * per-tensor keys (rewritten for the tensors as written), plus {@code lathe.pruning.method}
 * ({@code magnitude}, {@code wanda}, {@code sparsegpt} or {@code structured}) and
 * {@code lathe.pruning.sparsity} ({@code 50.0%}, {@code 2:4}); a structured cut also rewrites
 * {@code ARCH.block_count}, {@code ARCH.attention.head_count}, {@code ARCH.attention.head_count_kv},
 * {@code ARCH.feed_forward_length}, writes {@code ARCH.attention.key_length} /
 * {@code value_length} (the head width, which readers would otherwise derive from
 * {@code embedding_length / head_count}) and {@code lathe.pruning.kept_layers} (the input's
 * indices of the blocks kept, in order).
 */
// NOTE: unstructured sparsity is stored dense. A CSR-like format (values + column indices) costs
// 2 + 2 bytes per kept f16 weight (4 with f32), so at 50% it is as large as dense F16 and no
// faster on a memory-bound matvec; it would start to pay only beyond ~75% sparsity, where
// quality on these models collapses. 2:4 pays at 50% because its index is 2 bits, not 16.
public final class ModelPruner {
    private static final double DAMPENING = 0.01;

    private ModelPruner() {
    }

    /** What was written. */
    public record Summary(Path output, long bytes, Map<String, Integer> tensorsByFormat, double seconds, List<String> notes) {
    }

    public static Summary prune(Path input, Path output, PruneOptions options, boolean force, PrintStream log) {
        long start = System.nanoTime();
        if (Files.exists(output) && !force) {
            throw new IllegalArgumentException(output + " exists; pass --force to overwrite it");
        }
        if (output.toAbsolutePath().equals(input.toAbsolutePath())) {
            throw new IllegalArgumentException("the output " + output + " is the input: write to another file");
        }
        Map<String, Integer> counts = new TreeMap<>();
        List<String> notes = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            GgufFile gguf = openGguf(input, arena);
            LoadedModel model = GgufModelReader.fromFile(gguf, arena);
            if (options.structured()) {
                StructuredPruning.run(gguf, model, options, arena, log, counts, notes).write(output, force);
            } else {
                unstructured(gguf, model, options, arena, log, counts).write(output, force);
            }
        }
        try {
            return new Summary(output, Files.size(output), counts, (System.nanoTime() - start) / 1e9, notes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static GgufFile openGguf(Path input, Arena arena) {
        if (!Files.isRegularFile(input)) {
            throw new ModelFormatException(input.toString(), "no such file (lathe prune reads a GGUF model file)");
        }
        try {
            return GgufFile.open(input, arena);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(input.toString(), "lathe prune reads GGUF models: " + e.problem(), e);
        }
    }

    /** A pruned linear, encoded in its output format. */
    private record Encoded(MemorySegment data, WeightFormat format) {
    }

    private static PrunedModelWriter unstructured(GgufFile gguf, LoadedModel model, PruneOptions options, Arena arena,
                                                  PrintStream log, Map<String, Integer> counts) {
        SparsityTarget target = options.target();
        for (GgufTensorInfo info : gguf.tensors().values()) { // all shapes checked before any work
            if (TensorPlanner.isLinearLayer(info.name())) {
                target.checkRow(info.name(), model.tensor(info.name()).cols());
            }
        }
        Map<String, Encoded> pruned = new HashMap<>();
        String task = options.method().name().toLowerCase() + " " + target;
        if (options.method() == PruneMethod.MAGNITUDE) {
            try (ProgressBar progress = progress(task, model.config().layers(), log)) {
                for (int l = 0; l < model.config().layers(); l++) {
                    for (GgufTensorInfo info : gguf.tensors().values()) {
                        if (TensorPlanner.isLinearLayer(info.name()) && info.name().startsWith("blk." + l + ".")) {
                            WeightMatrix w = model.tensor(info.name());
                            float[] values = dequantize(w);
                            WeightPruning.magnitude(values, w.rows(), w.cols(), target);
                            pruned.put(info.name(), encode(values, null, w, options, arena));
                        }
                    }
                    progress.step();
                }
            }
        } else {
            List<int[]> windows = CalibrationText.windowsFor(model, options.calibration(), options.calibSamples(), options.seqLen());
            log.println(task + ": calibrating on " + CalibrationText.describe(windows) + " from " + options.calibration());
            try (CpuBackend backend = new CpuBackend(Math.max(1, Runtime.getRuntime().availableProcessors()))) {
                BlockwiseCalibration walk = new BlockwiseCalibration(model, windows, backend);
                walk.run((names, x, foldNorm, foldRows) -> {
                    Map<String, float[]> used = new HashMap<>();
                    int k = model.tensor(names[0]).cols();
                    double[] hessian = hessian(x, k, options.method() == PruneMethod.SPARSEGPT);
                    for (String name : names) {
                        WeightMatrix w = model.tensor(name);
                        float[] values = walk.current(name);
                        LatheEncoder.Grid[] grids = null;
                        if (options.method() == PruneMethod.WANDA) {
                            WeightPruning.wanda(values, w.rows(), k, hessian, target);
                        } else {
                            WeightFormat format = targetFormat(w, options);
                            LatheFormat quantize = format instanceof LatheFormat l
                                    && (l.kind() == LatheFormat.Kind.INT_GROUP || l.kind() == LatheFormat.Kind.SPARSE24_INT) ? l : null;
                            WeightPruning.Result r = WeightPruning.sparseGpt(values, w.rows(), k, hessian.clone(), target, quantize,
                                    DAMPENING);
                            values = r.values();
                            grids = r.grids();
                        }
                        pruned.put(name, encode(values, grids, w, options, arena));
                        used.put(name, values);
                    }
                    return used;
                }, task, log);
            }
        }
        PrunedModelWriter writer = new PrunedModelWriter(gguf, arena, Set.of());
        writer.metadata().putString("lathe.pruning.method", options.method().name().toLowerCase());
        writer.metadata().putString("lathe.pruning.sparsity", target.toString());
        for (GgufTensorInfo info : gguf.tensors().values()) {
            WeightMatrix w = model.tensor(info.name());
            Encoded e = pruned.get(info.name());
            if (e == null) {
                writer.copy(info, w, info.name());
                counts.merge(w.format().name() + " (kept)", 1, Integer::sum);
            } else {
                writer.putEncoded(info.name(), e.data(), w.rows(), w.cols(), e.format(), false);
                counts.merge(e.format().name() + " (pruned " + target + ")", 1, Integer::sum);
            }
        }
        return writer;
    }

    /**
     * {@code sum_t x_t x_t^T} over the group's inputs ({@code [K, K]}), or with {@code full} false
     * only its diagonal ({@code [K]}, Wanda's squared input norms).
     */
    static double[] hessian(HostTensor[] x, int k, boolean full) {
        if (full) {
            double[] h = new double[k * k];
            for (HostTensor t : x) {
                Gptq.accumulateHessian(h, t.data(), 0, t.rows(), k);
            }
            Gptq.symmetrize(h, k);
            return h;
        }
        double[] diagonal = new double[k];
        for (HostTensor t : x) {
            float[] d = t.data();
            for (int i = 0; i < t.rows() * k; i++) {
                diagonal[i % k] += (double) d[i] * d[i];
            }
        }
        return diagonal;
    }

    /** The format a pruned linear {@code w} is written in (see the class comment). */
    static WeightFormat targetFormat(WeightMatrix w, PruneOptions options) {
        int cols = w.cols();
        int group = options.int4Group();
        if (options.store() == PruneOptions.Store.SPARSE24) {
            if (group > 0 && cols % group == 0) {
                return LatheFormat.sparse24Int4(group, true);
            }
            if (cols % LatheFormat.SPARSE24_COLUMNS_PER_WORD == 0) { // INT4 groups do not fit: f16 kept values
                return LatheFormat.sparse24F16();
            }
        }
        if (group > 0 && cols % group == 0) {
            return LatheFormat.intGroup(4, group, true);
        }
        WeightFormat same = PrunedModelWriter.writableLike(w.format(), cols);
        // NOTE: formats with a per-block minimum (value = d*q - m) cannot store an exact 0, so the
        // pruned weights would come back non-zero: those inputs are written as Q8_0 instead.
        boolean zeroInexact = same == GgmlType.Q4_1 || same == GgmlType.Q5_1 || same == GgmlType.Q4_K || same == GgmlType.Q5_K;
        if (zeroInexact) {
            return cols % GgmlType.Q8_0.blockSize == 0 ? GgmlType.Q8_0 : GgmlType.F32;
        }
        return same;
    }

    private static Encoded encode(float[] values, LatheEncoder.Grid[] grids, WeightMatrix w, PruneOptions options, Arena arena) {
        WeightFormat format = targetFormat(w, options);
        int rows = w.rows();
        int cols = w.cols();
        MemorySegment data;
        if (format instanceof LatheFormat l && l.isSparse24()) {
            data = LatheEncoder.encodeSparse24(l, values, grids, rows, cols, arena);
        } else if (grids != null && format instanceof LatheFormat l) { // SparseGPT's own grids: keep its levels exactly
            long rowBytes = l.rowBytes(cols);
            data = arena.allocate(rowBytes * rows, 8);
            int groups = cols / l.groupSize();
            byte[] levels = new byte[cols];
            for (int r = 0; r < rows; r++) {
                LatheEncoder.Grid[] rowGrids = Arrays.copyOfRange(grids, r * groups, (r + 1) * groups);
                for (int i = 0; i < cols; i++) {
                    levels[i] = (byte) rowGrids[i / l.groupSize()].level(values[r * cols + i]);
                }
                LatheEncoder.packIntGroupRow(l, levels, rowGrids, cols, data, r * rowBytes);
            }
        } else {
            data = switch (format) {
                case GgmlType t -> GgmlQuantizer.quantize(t, values, rows, cols, arena);
                case LatheFormat l -> LatheEncoder.encode(l, values, rows, cols, arena);
            };
        }
        return new Encoded(data, format);
    }

    static float[] dequantize(WeightMatrix w) {
        float[] out = new float[w.rows() * w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            w.dequantizeRow(r, out, r * w.cols());
        }
        return out;
    }

    static ProgressBar progress(String task, int layers, PrintStream log) {
        return new ProgressBarBuilder().setTaskName(task).setInitialMax(layers).setUnit(" layers", 1)
                .setStyle(ProgressBarStyle.ASCII).setConsumer(new ConsoleProgressBarConsumer(log)).build();
    }
}
