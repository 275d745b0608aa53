package dev.lathe.cli;

import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.sample.SamplingParams;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code lathe generate}: streams a completion of the prompt to stdout; speed goes to stderr. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt, streamed to stdout (speed on stderr).")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SamplingOptions sampling;

    @Option(names = {"-p", "--prompt"}, paramLabel = "PROMPT", description = "Prompt text; empty starts from BOS alone.")
    String prompt = "";

    @Option(names = "--print-ids", description = "Print the generated token ids (space-separated) instead of text.")
    boolean printIds;

    @Override
    public Integer call() {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (ModelSession session = new ModelSession(modelOptions)) {
            SamplingParams params = sampling.toParams();
            GenerationResult result = session.generator.generate(prompt, params, piece -> {
                if (!printIds) {
                    out.print(piece);
                    out.flush();
                }
            });
            if (printIds) {
                List<String> ids = new ArrayList<>();
                for (int id : result.tokens()) {
                    ids.add(Integer.toString(id));
                }
                out.println(String.join(" ", ids));
            } else {
                out.println();
            }
            System.err.printf("prompt: %d tokens, %.2f tokens/s | generated: %d tokens, %.2f tokens/s | finish: %s | seed %d | %s%n",
                    result.promptTokens().length, result.prefillTokensPerSecond(), result.tokens().length,
                    result.decodeTokensPerSecond(), result.finishReason(), params.seed(), session.backend.describe());
        }
        return 0;
    }
}
