package dev.lathe.cli;

import dev.lathe.core.generate.DecodeStats;
import dev.lathe.core.generate.EarlyExit;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.spec.Speculation;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
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

    @Mixin
    KvOptions kvOptions;

    @Option(names = {"-p", "--prompt"}, paramLabel = "PROMPT", description = "Prompt text; empty starts from BOS alone.")
    String prompt = "";

    @Option(names = "--print-ids", description = "Print the generated token ids (space-separated) instead of text.")
    boolean printIds;

    @Mixin
    SpeculationOptions speculation;

    @Mixin
    EarlyExitOptions earlyExit;

    @Option(names = "--compare", description = "With --speculate or --early-exit: also generate without them in the same run"
            + " and print the decode speedup and how many tokens agree.")
    boolean compare;

    @Override
    public Integer call() {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        KvDtype kvDtype = kvOptions.dtype(); // option errors before the model loads
        try (ModelSession session = new ModelSession(modelOptions)) {
            SamplingParams params = sampling.toParams();
            try (BatchCommand.Drafting drafting = new BatchCommand.Drafting(speculation.create(session, modelOptions))) {
                Speculation spec = drafting.speculation();
                int layers = session.model.config().layers();
                EarlyExit exit = earlyExit.create(layers);
                if (compare && spec == null && exit == null) {
                    throw new IllegalArgumentException("--compare needs --speculate or --early-exit");
                }
                Generator plainGenerator = session.generator.withKvDtype(kvDtype);
                Generator generator = plainGenerator.withSpeculation(spec).withEarlyExit(exit);
                GenerationResult result = generate(generator, params, out);
                if (spec != null) {
                    DecodeStats d = result.decodeStats();
                    System.err.println(SpeculationOptions.describe(spec, d.draftedTokens(), d.acceptedTokens(), d.steps()));
                }
                if (exit != null) {
                    System.err.printf("early exit: threshold %s after layers %s of %d | %.2f layers per decode step on average%n",
                            exit.threshold(), Arrays.toString(exit.exitLayers()), layers, result.decodeStats().layersPerStep());
                }
                if (compare) {
                    GenerationResult plain = plainGenerator.generate(result.promptTokens(), params, null);
                    int same = 0;
                    while (same < Math.min(plain.tokens().length, result.tokens().length)
                            && plain.tokens()[same] == result.tokens()[same]) {
                        same++;
                    }
                    int positional = 0;
                    for (int i = 0; i < Math.min(plain.tokens().length, result.tokens().length); i++) {
                        positional += plain.tokens()[i] == result.tokens()[i] ? 1 : 0;
                    }
                    System.err.printf("compare: plain decode %.2f tokens/s vs %.2f tokens/s: %.2fx | %d of %d tokens identical"
                                    + " before the first difference, %d equal position by position%s%n",
                            plain.decodeTokensPerSecond(), result.decodeTokensPerSecond(),
                            result.decodeTokensPerSecond() / plain.decodeTokensPerSecond(), same, plain.tokens().length, positional,
                            Arrays.equals(plain.tokens(), result.tokens()) ? " (identical output)" : "");
                }
            }
        }
        return 0;
    }

    /** Generates with {@code generator}, streaming text (or printing ids) to {@code out}, speed to stderr. */
    private GenerationResult generate(Generator generator, SamplingParams params, PrintStream out) {
        GenerationResult result = generator.generate(prompt, params, piece -> {
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
                result.decodeTokensPerSecond(), result.finishReason(), params.seed(), generator.model().backend().describe());
        return result;
    }
}
