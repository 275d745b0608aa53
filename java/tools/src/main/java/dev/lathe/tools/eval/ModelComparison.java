package dev.lathe.tools.eval;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Tokenizer;
import dev.lathe.core.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code lathe eval compare}: perplexity, size and speed of a base model and its quantized
 * variants on one text, with the base's tokenizer for all (variants share its vocabulary).
 */
public final class ModelComparison {
    private static final int SPEED_PROMPT = 128;
    private static final int SPEED_DECODE = 64;

    private ModelComparison() {
    }

    /** A model to compare: a display label (null: derived from the file) and its path. */
    public record Variant(String label, Path path) {
        /** {@code LABEL=PATH} or a bare path. */
        public static Variant parse(String spec) {
            int eq = spec.indexOf('=');
            return eq > 0 ? new Variant(spec.substring(0, eq), Path.of(spec.substring(eq + 1))) : new Variant(null, Path.of(spec));
        }
    }

    /** One row of the table. */
    public record Row(String label, String method, String format, double bitsPerWeight, long fileBytes, double perplexity,
                      double changePercent, double prefillTokensPerSecond, double decodeTokensPerSecond) {
    }

    public static List<Row> compare(Variant base, List<Variant> variants, Path textFile, int ctx, int stride, int threads,
                                    PrintStream log) {
        String text;
        try {
            text = Files.readString(textFile);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IllegalArgumentException("text file " + textFile + " does not exist");
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + textFile, e);
        }
        if (text.isBlank()) {
            throw new IllegalArgumentException("text file " + textFile + " is empty");
        }
        List<Variant> all = new ArrayList<>();
        all.add(base);
        all.addAll(variants);
        int[] tokens;
        try (LoadedModel m = ModelLoader.load(base.path())) {
            if (m.vocabulary() == null) {
                throw new IllegalArgumentException(base.path() + " carries no tokenizer: perplexity needs one");
            }
            tokens = encodeWithBos(Tokenizers.create(m.vocabulary()), text);
        }
        List<Row> rows = new ArrayList<>();
        double basePpl = Double.NaN;
        for (Variant v : all) {
            try (LoadedModel m = ModelLoader.load(v.path()); CpuBackend backend = new CpuBackend(threads)) {
                LlamaModel model = new LlamaModel(m, backend);
                int window = Math.min(ctx, m.config().contextLength());
                Perplexity.Result ppl = Perplexity.evaluate(model, tokens, window, Math.min(stride, window));
                int[] prompt = Arrays.copyOf(tokens, Math.min(SPEED_PROMPT, Math.min(tokens.length, m.config().contextLength() - SPEED_DECODE)));
                SpeedProbe.Speed speed = SpeedProbe.measure(model, prompt, SPEED_DECODE);
                if (rows.isEmpty()) {
                    basePpl = ppl.perplexity();
                }
                String method = method(m);
                String format = dominantFormat(m);
                String label = uniqueLabel(rows, v.label() != null ? v.label() : (rows.isEmpty() ? "base " : method + " ") + format);
                Row row = new Row(label,
                        rows.isEmpty() ? "base" : method, format, bitsPerWeight(m), fileSize(v.path()), ppl.perplexity(),
                        100 * (ppl.perplexity() / basePpl - 1), speed.prefillTokensPerSecond(), speed.decodeTokensPerSecond());
                rows.add(row);
                log.printf("%-22s ppl %.4f (%+.2f%%), %.2f bits/weight, %.2f MB, prefill %.0f tok/s, decode %.0f tok/s%n",
                        row.label(), row.perplexity(), row.changePercent(), row.bitsPerWeight(), row.fileBytes() / 1e6,
                        row.prefillTokensPerSecond(), row.decodeTokensPerSecond());
            }
        }
        return rows;
    }

    /** The text's tokens, with BOS first when the tokenizer has one (the convention of {@link Perplexity}). */
    public static int[] encodeWithBos(Tokenizer tokenizer, String text) {
        int[] body = tokenizer.encode(text);
        if (tokenizer.bosId() < 0) {
            return body;
        }
        int[] out = new int[body.length + 1];
        out[0] = tokenizer.bosId();
        System.arraycopy(body, 0, out, 1, body.length);
        return out;
    }

    private static String uniqueLabel(List<Row> rows, String label) {
        String candidate = label;
        for (int n = 2; ; n++) {
            String c = candidate;
            if (rows.stream().noneMatch(r -> r.label().equals(c))) {
                return candidate;
            }
            candidate = label + " (" + n + ")";
        }
    }

    /**
     * How a variant was made, from the keys {@code lathe quantize} and {@code lathe prune} write:
     * e.g. {@code gptq}, {@code prune sparsegpt 2:4}, {@code prune structured}; {@code as read} for
     * a file neither wrote.
     */
    static String method(LoadedModel m) {
        List<String> parts = new ArrayList<>();
        String pruning = string(m, "lathe.pruning.method");
        if (pruning != null) {
            String sparsity = string(m, "lathe.pruning.sparsity");
            parts.add("prune " + pruning + (sparsity != null ? " " + sparsity : ""));
        }
        String quantization = string(m, "lathe.quantization.method");
        if (quantization != null) {
            parts.add(quantization);
        }
        return parts.isEmpty() ? "as read" : String.join(" + ", parts);
    }

    private static String string(LoadedModel m, String key) {
        Object value = m.metadata().get(key);
        if (value == null) {
            return null;
        }
        String v = value.toString(); // metadata summaries quote strings
        return v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.substring(1, v.length() - 1) : v;
    }

    /** The format of most of the decoder blocks' matrices (by count: the few 8-bit fallbacks do not name a model). */
    static String dominantFormat(LoadedModel m) {
        Map<String, Integer> counts = new HashMap<>();
        for (WeightMatrix w : m.tensors().values()) {
            if (w.rows() > 1 && w.name().startsWith("blk.")) {
                counts.merge(w.format().name(), 1, Integer::sum);
            }
        }
        return counts.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse("?");
    }

    /** Storage bits per parameter over every tensor (norms, embeddings, scales and zero points included). */
    static double bitsPerWeight(LoadedModel m) {
        long bytes = 0;
        long params = 0;
        for (WeightMatrix w : m.tensors().values()) {
            bytes += w.byteSize();
            params += (long) w.rows() * w.cols();
        }
        return 8.0 * bytes / params;
    }

    private static long fileSize(Path p) {
        try {
            return Files.isDirectory(p) ? -1 : Files.size(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
