package dev.lathe.cli;

import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tokenizer.Tokenizers;
import dev.lathe.tools.eval.ComparisonReport;
import dev.lathe.tools.eval.ModelComparison;
import dev.lathe.tools.eval.Perplexity;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code lathe eval}: perplexity and the quality / size / speed comparison of quantized models. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate models: perplexity, and comparisons of variants.",
        subcommands = {EvalCommand.Ppl.class, EvalCommand.Compare.class, CommandLine.HelpCommand.class})
final class EvalCommand implements Runnable {
    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    private static String read(Path text) throws Exception {
        if (!Files.isRegularFile(text)) {
            throw new IllegalArgumentException("text file " + text + " does not exist");
        }
        String s = Files.readString(text);
        if (s.isBlank()) {
            throw new IllegalArgumentException("text file " + text + " is empty");
        }
        return s;
    }

    @Command(name = "ppl", mixinStandardHelpOptions = true,
            description = {"Sliding-window perplexity of a model on a text file.",
                "BOS is prepended; windows of --ctx tokens start every --stride tokens and each scores only the tokens",
                "no earlier window scored (every token but the first is scored once); ppl = exp(mean NLL)."})
    static final class Ppl implements Callable<Integer> {
        @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "The model.")
        Path model;

        @Option(names = "--text", required = true, paramLabel = "FILE", description = "UTF-8 text to score.")
        Path text;

        @Option(names = "--ctx", paramLabel = "L", description = "Window length in tokens (default: 512, capped at the model's context).")
        Integer ctx;

        @Option(names = "--stride", paramLabel = "S", description = "Window step in tokens (default: half the window).")
        Integer stride;

        @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "CPU threads (default: all cores).")
        int threads = Runtime.getRuntime().availableProcessors();

        @Mixin
        KvOptions kvOptions = new KvOptions();

        @Override
        public Integer call() throws Exception {
            KvDtype kvDtype = kvOptions.dtype(); // option errors before the model loads
            String content = read(text);
            try (LoadedModel m = ModelLoader.load(model); CpuBackend backend = new CpuBackend(threads)) {
                if (m.vocabulary() == null) {
                    throw new IllegalArgumentException(model + " carries no tokenizer: perplexity needs one");
                }
                int[] tokens = ModelComparison.encodeWithBos(Tokenizers.create(m.vocabulary()), content);
                int window = ctx != null ? ctx : Math.min(512, m.config().contextLength());
                int step = stride != null ? stride : Math.max(1, window / 2);
                Perplexity.Result r = Perplexity.evaluate(new LlamaModel(m, backend), tokens, window, step, kvDtype);
                System.out.printf("perplexity %.4f (mean NLL %.5f nats) over %d scored tokens, %d windows of %d, stride %d, %.1f s%s%n",
                        r.perplexity(), r.meanNll(), r.scored(), r.windows(), window, step, r.seconds(),
                        kvDtype == KvDtype.F32 ? "" : ", " + kvDtype.label() + " KV");
            }
            return 0;
        }
    }

    @Command(name = "compare", mixinStandardHelpOptions = true,
            description = {"Compare a base model with quantized variants: a Markdown and CSV table (method, bits/weight,",
                "size, perplexity, change vs base, prefill and decode tok/s) and a PNG chart of perplexity against size."})
    static final class Compare implements Callable<Integer> {
        @Option(names = {"-m", "--model"}, required = true, paramLabel = "BASE", description = "The base model ([LABEL=]PATH).")
        String base;

        @Option(names = "--variant", required = true, paramLabel = "V", description = "A variant ([LABEL=]PATH); repeatable.")
        List<String> variants = new ArrayList<>();

        @Option(names = "--text", required = true, paramLabel = "FILE", description = "UTF-8 text to score.")
        Path text;

        @Option(names = {"-o", "--output"}, required = true, paramLabel = "DIR", description = "Directory for compare.md, compare.csv, ppl_vs_size.png.")
        Path output;

        @Option(names = "--ctx", paramLabel = "L", description = "Window length (default ${DEFAULT-VALUE}, capped at each model's context).")
        int ctx = 512;

        @Option(names = "--stride", paramLabel = "S", description = "Window step (default: half the window).")
        Integer stride;

        @Option(names = "--title", paramLabel = "TITLE", description = "Title of the table and chart.")
        String title;

        @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "CPU threads (default: all cores).")
        int threads = Runtime.getRuntime().availableProcessors();

        @Override
        public Integer call() throws Exception {
            read(text);
            List<ModelComparison.Variant> vs = variants.stream().map(ModelComparison.Variant::parse).toList();
            ModelComparison.Variant b = ModelComparison.Variant.parse(base);
            List<ModelComparison.Row> rows = ModelComparison.compare(b, vs, text, ctx, stride != null ? stride : Math.max(1, ctx / 2),
                    threads, System.err);
            String t = title != null ? title : "Variants of " + b.path().getFileName() + " on " + text.getFileName();
            ComparisonReport.write(rows, output, t);
            System.out.print(Files.readString(output.resolve(ComparisonReport.MARKDOWN)));
            System.out.println("wrote " + output.resolve(ComparisonReport.MARKDOWN) + ", " + ComparisonReport.CSV + ", " + ComparisonReport.CHART);
            return 0;
        }
    }
}
