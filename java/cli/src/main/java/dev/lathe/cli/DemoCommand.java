package dev.lathe.cli;

import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code lathe demo}: the README's first command. Without {@code -m} it writes a small Llama-shaped
 * model with random weights (no download), then generates with it and benchmarks it.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Generate and benchmark: with a synthetic model made on the spot, or with -m MODEL.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", description = "Your model (default: a synthetic one, made now).")
    Path model;

    @Option(names = {"-z", "--tokenizer"}, paramLabel = "TOKENIZER", description = "Tokenizer override, as for generate.")
    Path tokenizer;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "CPU threads (default: all cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = {"-p", "--prompt"}, paramLabel = "PROMPT", description = "Prompt (default: \"${DEFAULT-VALUE}\").")
    String prompt = "Once upon a time";

    @Option(names = "--type", paramLabel = "TYPE", description = "Weight type of the synthetic model: Q8_0, Q4_0, F16, F32 (default ${DEFAULT-VALUE}).")
    GgmlType type = GgmlType.Q8_0;

    @Override
    public Integer call() throws IOException {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        Path modelPath = model;
        Path temporary = null;
        if (modelPath == null) {
            SyntheticModel synthetic = SyntheticModel.small(type);
            temporary = Files.createTempFile("lathe-demo-", ".gguf");
            out.printf("== 1. Making a synthetic Llama-shaped model (no download): %,d parameters, %s weights,%n"
                            + "      dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d -> %s%n"
                            + "      NOTE: its weights are random, so the text below is meaningless; shapes, formats and speed are real.%n",
                    synthetic.parameterCount(), type, synthetic.dim(), synthetic.layers(), synthetic.heads(),
                    synthetic.kvHeads(), synthetic.ffnDim(), synthetic.vocab(), temporary);
            synthetic.write(temporary);
            modelPath = temporary;
        } else {
            out.printf("== 1. Using your model: %s%n", modelPath);
        }
        try (ModelSession session = new ModelSession(modelPath, tokenizer, "cpu", threads)) {
            var c = session.loaded.config();
            out.printf("      loaded %s (%s): %s, dim %d, %d layers, %d heads / %d KV, context %d; tokenizer: %s%n",
                    session.loaded.format(), c.architecture(), session.backend.describe(), c.dim(), c.layers(), c.heads(),
                    c.kvHeads(), c.contextLength(), session.tokenizer.describe());

            out.printf("%n== 2. Generating 48 tokens, greedy, from \"%s\":%n", prompt);
            out.print(prompt);
            GenerationResult result = session.generator.generate(prompt,
                    SamplingParams.greedy().withMaxNewTokens(48), piece -> {
                        out.print(piece);
                        out.flush();
                    });
            out.printf("%n      prompt %d tokens at %.1f tokens/s; %d tokens generated at %.1f tokens/s (%s)%n",
                    result.promptTokens().length, result.prefillTokensPerSecond(), result.tokens().length,
                    result.decodeTokensPerSecond(), result.finishReason());

            out.printf("%n== 3. Benchmark (lathe bench: 64 prompt tokens, 32 decoded, median of 3):%n");
            BenchCommand.report(session, 64, 32, 3, true, threads, KvDtype.F32);
            out.printf("%nNext: lathe generate -m MODEL -p \"...\", lathe bench -m MODEL, lathe inspect MODEL (see README.md).%n");
        } finally {
            if (temporary != null) {
                Files.deleteIfExists(temporary);
            }
        }
        return 0;
    }
}
