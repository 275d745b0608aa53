package dev.lathe.cli;

import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.tensor.GgmlType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code lathe synthetic}: writes a Llama-shaped GGUF with random weights, for benchmarks and tests. */
@Command(name = "synthetic", mixinStandardHelpOptions = true,
        description = "Write a Llama-shaped GGUF model with random weights (meaningless text, real shapes and speed).")
final class SyntheticCommand implements Callable<Integer> {
    enum Shape { small, m200 }

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "The GGUF file to write.")
    Path output;

    @Option(names = "--shape", paramLabel = "SHAPE",
            description = "small (~4M parameters) or m200 (~200M: dim 1024, 12 layers, 16 heads, 4 KV, FFN 2816, vocab 32000). Default ${DEFAULT-VALUE}.")
    Shape shape = Shape.small;

    @Option(names = "--type", paramLabel = "TYPE", description = "Weight type: F32, F16, BF16, Q8_0, Q4_0 (default ${DEFAULT-VALUE}).")
    GgmlType type = GgmlType.Q8_0;

    @Option(names = "--force", description = "Overwrite an existing file.")
    boolean force;

    @Override
    public Integer call() throws Exception {
        if (Files.exists(output) && !force) {
            throw new IllegalArgumentException(output + " exists; pass --force to overwrite it");
        }
        SyntheticModel model = shape == Shape.small ? SyntheticModel.small(type) : SyntheticModel.bench200M(type);
        // Written beside the target and moved into place, so an interrupted run leaves no half-written model.
        Path partial = output.resolveSibling(output.getFileName() + ".partial");
        model.write(partial);
        Files.move(partial, output, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        System.out.printf("wrote %s: %,d parameters, %s weights, %.1f MB (random weights: the text is meaningless)%n",
                output, model.parameterCount(), type, Files.size(output) / 1e6);
        return 0;
    }
}
