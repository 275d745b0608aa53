package dev.lathe.tools.quant;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufModelReader;
import dev.lathe.core.gguf.GgufTensorInfo;
import dev.lathe.core.gguf.GgufValue;
import dev.lathe.core.gguf.GgufWriter;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.tools.hf.HfExporter;
import dev.lathe.tools.hf.HfLayout;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code lathe quantize}: reads a GGUF model, decides each tensor's format by
 * {@link TensorPlanner}'s rule, quantizes (calibrated methods first run layer by layer over the
 * calibration text) and writes a GGUF with the input's metadata, atomically.
 *
 * <p>Written metadata: everything the input had, except {@code general.file_type} (set to the
 * llama.cpp file type for ggml methods, removed for Lathe formats, which llama.cpp cannot run),
 * plus {@code lathe.quantization.method / bits / group_size} and, per tensor in a Lathe format,
 * {@code lathe.tensor_format.NAME} and {@code lathe.tensor_cols.NAME} (see GgufModelReader).
 */
public final class ModelQuantizer {
    private ModelQuantizer() {
    }

    /** What was written. */
    public record Summary(Path output, long bytes, Map<String, Integer> tensorsByFormat, double seconds) {
    }

    /**
     * What a calibrated method decided before writing: replacement f32 values for some tensors
     * (AWQ's scaled weights and norms), and finished encodings for others (GPTQ's packed rows).
     */
    public record Calibrated(Map<String, float[]> values, Map<String, MemorySegment> encoded) {
        public static Calibrated none() {
            return new Calibrated(Map.of(), Map.of());
        }
    }

    /** Quantizes {@code input} into {@code output}; an existing output is an error unless {@code force}. */
    public static Summary quantize(Path input, Path output, QuantOptions options, boolean force, PrintStream log) {
        return quantize(input, output, options, null, force, log);
    }

    /**
     * Quantizes {@code input} into {@code output}; with {@code sensitivityBudget} (bits per weight,
     * or null for the rule alone) the rule's low-bit tensors are mixed with INT8 by measured
     * sensitivity ({@link SensitivityMixing}).
     */
    public static Summary quantize(Path input, Path output, QuantOptions options, Double sensitivityBudget, boolean force,
                                   PrintStream log) {
        long start = System.nanoTime();
        if (Files.exists(output) && !force) {
            throw new IllegalArgumentException(output + " exists; pass --force to overwrite it");
        }
        if (output.toAbsolutePath().equals(input.toAbsolutePath())) {
            throw new IllegalArgumentException("the output " + output + " is the input: write to another file");
        }
        Map<String, Integer> counts = new TreeMap<>();
        try (Arena arena = Arena.ofShared()) {
            GgufFile gguf = openGguf(input, arena);
            LoadedModel model = GgufModelReader.fromFile(gguf, arena);
            Map<String, WeightMatrix> tensors = new LinkedHashMap<>();
            for (GgufTensorInfo info : gguf.tensors().values()) {
                tensors.put(info.name(), model.tensor(info.name()));
            }
            Map<String, WeightFormat> plan = TensorPlanner.planAll(tensors, options);
            if (sensitivityBudget != null) {
                plan = SensitivityMixing.refine(model, plan, options, sensitivityBudget, log);
            }
            Calibrated calibrated = switch (options.method()) {
                case GPTQ, AWQ -> CalibratedQuantization.run(model, plan, options, arena, log);
                default -> Calibrated.none();
            };
            GgufWriter writer = new GgufWriter();
            copyMetadata(gguf, writer, options);
            for (GgufTensorInfo info : gguf.tensors().values()) {
                WeightMatrix w = model.tensor(info.name());
                WeightFormat target = plan.get(info.name());
                float[] replaced = calibrated.values().get(info.name());
                if (target == null && replaced != null) {
                    target = GgmlType.F32; // a vector AWQ rescaled: stored exactly
                }
                addTensor(writer, info, w, target, replaced, calibrated.encoded().get(info.name()));
                counts.merge(target == null ? w.format().name() + " (kept)" : target.name(), 1, Integer::sum);
            }
            AtomicOutput.write(output, force, writer::write);
        }
        long bytes;
        try {
            bytes = Files.size(output);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return new Summary(output, bytes, counts, (System.nanoTime() - start) / 1e9);
    }

    /** What {@code quantizeToHf} wrote. */
    public record HfSummary(Path output, long bytes, HfExporter.Result export, double seconds) {
    }

    /** The Hugging Face packing a method's output is written in, or an error saying why there is none. */
    public static HfExporter.Packing hfPacking(QuantOptions options) {
        return switch (options.method()) {
            case NF4 -> HfExporter.Packing.BITSANDBYTES;
            case AWQ -> {
                if (options.bits() != 4) {
                    throw new IllegalArgumentException("--output-format hf: AWQ's gemm packing holds 4 bits, not " + options.bits());
                }
                yield HfExporter.Packing.AWQ;
            }
            case GPTQ, RTN -> {
                if (options.bits() != 4 && options.bits() != 2) {
                    throw new IllegalArgumentException("--output-format hf: " + options.method().name().toLowerCase()
                            + " --bits " + options.bits() + " has no GPTQ packing Lathe writes (2 or 4 bits; 3-bit GPTQ "
                            + "crosses word boundaries, 8 bits is INT8 per channel)");
                }
                yield HfExporter.Packing.GPTQ;
            }
            default -> throw new IllegalArgumentException("--output-format hf writes GPTQ, AWQ and bitsandbytes packings "
                    + "(rtn, gptq, awq, nf4); " + options.method().name().toLowerCase() + " is a GGUF type: write GGUF");
        };
    }

    /**
     * The model at {@code input} (any format Lathe reads) moved to the Hugging Face layout
     * ({@link HfLayout}) and quantized in memory: exactly the tensors {@link #quantizeToHf} writes.
     * A {@code tokenizer} given replaces the input's own vocabulary.
     */
    public static LoadedModel quantizeForHf(LoadedModel input, QuantOptions options, Double sensitivityBudget, Arena arena,
                                            PrintStream log) {
        hfPacking(options);
        return quantizeInMemory(HfLayout.of(input, arena), options, sensitivityBudget, arena, log);
    }

    /**
     * {@code lathe quantize --output-format hf}: quantizes {@code input} and writes a Hugging Face
     * directory ({@link HfExporter}) at {@code output}, atomically (a temporary directory renamed).
     *
     * @param tokenizer a tokenizer file to use when the input carries none (llama2.c), or null
     */
    public static HfSummary quantizeToHf(Path input, Path output, QuantOptions options, Double sensitivityBudget, Path tokenizer,
                                         boolean force, long maxShardBytes, PrintStream log) {
        long start = System.nanoTime();
        HfExporter.Packing packing = hfPacking(options);
        if (output.toAbsolutePath().normalize().equals(input.toAbsolutePath().normalize())) {
            throw new IllegalArgumentException("the output " + output + " is the input: write to another directory");
        }
        if (Files.exists(output) && !force) {
            throw new IllegalArgumentException(output + " exists; pass --force to overwrite it");
        }
        HfExporter.Result[] result = new HfExporter.Result[1];
        try (Arena arena = Arena.ofShared(); LoadedModel source = ModelLoader.load(input)) {
            LoadedModel model = source;
            if (tokenizer != null) {
                model = new LoadedModel(source.source(), source.format(), source.config(), source.tensors(),
                        TokenizerLoader.read(tokenizer), source.metadata(), source.arena());
            }
            LoadedModel quantized = quantizeForHf(model, options, sensitivityBudget, arena, log);
            Path sourceDirectory = Files.isDirectory(input) && tokenizer == null ? input : null;
            AtomicOutput.writeDirectory(output, force, dir -> result[0] = HfExporter.write(quantized, packing,
                    options.actOrder(), sourceDirectory, dir, maxShardBytes));
        }
        long bytes = 0;
        for (Path f : result[0].files()) {
            try {
                bytes += Files.size(output.resolve(f.getFileName()));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
        return new HfSummary(output, bytes, result[0], (System.nanoTime() - start) / 1e9);
    }

    private static GgufFile openGguf(Path input, Arena arena) {
        if (!Files.isRegularFile(input)) {
            throw new ModelFormatException(input.toString(), "no such file (lathe quantize reads a GGUF model file)");
        }
        try {
            return GgufFile.open(input, arena);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(input.toString(), "lathe quantize reads GGUF models: " + e.problem(), e);
        }
    }

    private static void copyMetadata(GgufFile gguf, GgufWriter writer, QuantOptions options) {
        for (Map.Entry<String, GgufValue> e : gguf.metadata().asMap().entrySet()) {
            String key = e.getKey();
            if (key.equals("general.file_type") || key.startsWith("lathe.")) {
                continue;
            }
            writer.put(key, e.getValue());
        }
        int fileType = switch (options.method()) {
            case Q8_0 -> 7;   // LLAMA_FTYPE_MOSTLY_Q8_0
            case Q4_0 -> 2;   // LLAMA_FTYPE_MOSTLY_Q4_0
            case Q4_K -> 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_S: every K-divisible matrix Q4_K
            case Q5_K -> 16;  // LLAMA_FTYPE_MOSTLY_Q5_K_S: every K-divisible matrix Q5_K
            case Q4_K_M -> 15; // LLAMA_FTYPE_MOSTLY_Q4_K_M
            case Q5_K_M -> 17; // LLAMA_FTYPE_MOSTLY_Q5_K_M
            case Q6_K -> 18;  // LLAMA_FTYPE_MOSTLY_Q6_K
            default -> -1;
        };
        if (fileType >= 0) {
            writer.putUint32("general.file_type", fileType);
        }
        writer.putString("lathe.quantization.method", options.method().name().toLowerCase());
        if (!options.method().writesGgmlType()) {
            writer.putString("lathe.quantization.format", options.target().name());
        }
    }

    private static void addTensor(GgufWriter writer, GgufTensorInfo info, WeightMatrix w, WeightFormat target,
                                  float[] replaced, MemorySegment encoded) {
        String name = info.name();
        long[] shape = rowMajorShape(info);
        int cols = w.cols();
        if (target == null) {
            if (w.format() instanceof LatheFormat lathe) {
                writer.putString(GgufModelReader.LATHE_FORMAT_KEY + name, lathe.spec());
                writer.putUint32(GgufModelReader.LATHE_COLS_KEY + name, cols);
            }
            writer.addTensor(name, info.type(), shape, out -> out.copyFrom(w.data()));
            return;
        }
        switch (target) {
            case GgmlType type -> writer.addTensor(name, type, shape, out -> encode(w, type, replaced, encoded, out));
            case LatheFormat format -> {
                writer.putString(GgufModelReader.LATHE_FORMAT_KEY + name, format.spec());
                writer.putUint32(GgufModelReader.LATHE_COLS_KEY + name, cols);
                writer.addTensor(name, GgmlType.I8, new long[] {format.storedRows(w.rows(), cols), format.rowBytes(cols)},
                        out -> encode(w, format, replaced, encoded, out));
            }
        }
    }

    /** Bytes of {@code w} (rows replaced by {@code replaced} when non-null) in {@code target}, or {@code encoded} as it is. */
    private static long encodedBytes(WeightMatrix w, WeightFormat target) {
        return switch (target) {
            case GgmlType type -> type.bytesFor(w.cols(), w.name()) * w.rows();
            case LatheFormat format -> format.matrixBytes(w.rows(), w.cols());
        };
    }

    /** Writes {@code w} (its rows replaced by {@code replaced} when non-null) in {@code target} to {@code out}; a calibrated method's {@code encoded} bytes are copied. */
    private static void encode(WeightMatrix w, WeightFormat target, float[] replaced, MemorySegment encoded, MemorySegment out) {
        int rows = w.rows();
        int cols = w.cols();
        if (encoded != null) {
            out.copyFrom(encoded);
            return;
        }
        float[] row = new float[cols];
        switch (target) {
            case GgmlType type -> {
                long rowBytes = type.bytesFor(cols, w.name());
                for (int r = 0; r < rows; r++) {
                    source(w, replaced, r, row);
                    GgmlQuantizer.quantizeRow(type, row, 0, cols, out, r * rowBytes);
                }
            }
            case LatheFormat format -> {
                if (format.doubleQuant()) { // the absmax codes need the whole matrix's absmax values
                    float[] all = new float[Math.multiplyExact(rows, cols)];
                    for (int r = 0; r < rows; r++) {
                        source(w, replaced, r, row);
                        System.arraycopy(row, 0, all, r * cols, cols);
                    }
                    try (Arena arena = Arena.ofConfined()) {
                        out.copyFrom(LatheEncoder.encode(format, all, rows, cols, arena));
                    }
                    return;
                }
                long rowBytes = format.rowBytes(cols);
                for (int r = 0; r < rows; r++) {
                    source(w, replaced, r, row);
                    LatheEncoder.encodeRow(format, row, 0, cols, out, r * rowBytes);
                }
            }
        }
    }

    /**
     * Quantizes {@code model} in memory, by the same rule, calibration and encoders as
     * {@link #quantize}: every tensor in its planned format (kept ones as they are, AWQ-rescaled
     * vectors as F32), in {@code arena}. The result shares {@code model}'s vocabulary, metadata and arena.
     */
    public static LoadedModel quantizeInMemory(LoadedModel model, QuantOptions options, Double sensitivityBudget, Arena arena,
                                               PrintStream log) {
        Map<String, WeightFormat> plan = TensorPlanner.planAll(model.tensors(), options);
        if (sensitivityBudget != null) {
            plan = SensitivityMixing.refine(model, plan, options, sensitivityBudget, log);
        }
        Calibrated calibrated = switch (options.method()) {
            case GPTQ, AWQ -> CalibratedQuantization.run(model, plan, options, arena, log);
            default -> Calibrated.none();
        };
        java.util.SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, WeightMatrix> e : model.tensors().entrySet()) {
            String name = e.getKey();
            WeightMatrix w = e.getValue();
            WeightFormat target = plan.get(name);
            float[] replaced = calibrated.values().get(name);
            if (target == null && replaced != null) {
                target = GgmlType.F32; // a vector AWQ rescaled: stored exactly
            }
            if (target == null) {
                tensors.put(name, w);
                continue;
            }
            MemorySegment out = arena.allocate(encodedBytes(w, target), 8);
            encode(w, target, replaced, calibrated.encoded().get(name), out);
            tensors.put(name, dev.lathe.core.tensor.WeightMatrices.of(name, target, w.rows(), w.cols(), out));
        }
        return new LoadedModel(model.source(), model.format(), model.config(), tensors, model.vocabulary(), model.metadata(),
                model.arena());
    }

    private static void source(WeightMatrix w, float[] replaced, int row, float[] out) {
        if (replaced != null) {
            System.arraycopy(replaced, row * w.cols(), out, 0, w.cols());
        } else {
            w.dequantizeRow(row, out, 0);
        }
    }

    private static long[] rowMajorShape(GgufTensorInfo info) {
        long[] dims = info.dims();
        long[] shape = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            shape[i] = dims[dims.length - 1 - i];
        }
        return shape;
    }
}
