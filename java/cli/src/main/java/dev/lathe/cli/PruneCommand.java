package dev.lathe.cli;

import dev.lathe.tools.prune.ModelPruner;
import dev.lathe.tools.prune.PruneMethod;
import dev.lathe.tools.prune.PruneOptions;
import dev.lathe.tools.prune.SparsityTarget;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code lathe prune}: writes a pruned copy of a GGUF model. */
@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"Prune a GGUF model. Weight sparsity (--sparsity F or --pattern N:M) by magnitude, wanda or sparsegpt;",
            "2:4 is written in Lathe's compressed 2:4 format (F16, or INT4 with --int4 G), other sparsity dense.",
            "Or structured cuts that make the model smaller: --heads F, --ffn F, --drop-layers N (scored on --calib text)."})
final class PruneCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "IN", description = "The GGUF model to prune.")
    Path input;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "The GGUF file to write.")
    Path output;

    @Option(names = "--method", paramLabel = "METHOD", description = "magnitude, wanda or sparsegpt (default ${DEFAULT-VALUE}).")
    PruneMethod method = PruneMethod.SPARSEGPT;

    @Option(names = "--sparsity", paramLabel = "F", description = "Fraction of each row's weights to prune, in (0, 1).")
    Double sparsity;

    @Option(names = "--pattern", paramLabel = "N:M", description = "Keep N of every M consecutive weights along a row (2:4, 4:8).")
    String pattern;

    @Option(names = "--heads", paramLabel = "F", description = "Remove this fraction of KV heads (each with its query group) per layer.")
    double heads;

    @Option(names = "--ffn", paramLabel = "F", description = "Remove this fraction of FFN neurons per layer.")
    double ffn;

    @Option(names = "--drop-layers", paramLabel = "N", description = "Remove the N layers of lowest Block Influence.")
    int dropLayers;

    @Option(names = "--store", paramLabel = "STORE", description = "dense or sparse24 (default: sparse24 for --pattern 2:4, else dense).")
    PruneOptions.Store store;

    @Option(names = "--int4", paramLabel = "G", description = "Also quantize kept weights to INT4 with groups of G columns (sparsegpt: in the same pass).")
    int int4Group;

    @Option(names = "--calib", paramLabel = "FILE", description = "Calibration text (all but magnitude).")
    Path calibration;

    @Option(names = "--calib-samples", paramLabel = "N", description = "Calibration windows (default ${DEFAULT-VALUE}).")
    int calibSamples = 32;

    @Option(names = "--seq-len", paramLabel = "L", description = "Tokens per calibration window (default ${DEFAULT-VALUE}).")
    int seqLen = 128;

    @Option(names = "--force", description = "Overwrite an existing output file.")
    boolean force;

    @Override
    public Integer call() {
        if (sparsity != null && pattern != null) {
            throw new IllegalArgumentException("--sparsity and --pattern are two ways to say one thing: pass one");
        }
        SparsityTarget target = sparsity != null ? SparsityTarget.unstructured(sparsity)
                : pattern != null ? SparsityTarget.parsePattern(pattern) : null;
        PruneOptions options = new PruneOptions(method, target, heads, ffn, dropLayers, calibration, calibSamples, seqLen,
                store != null ? store : PruneOptions.defaultStore(target), int4Group);
        ModelPruner.Summary s = ModelPruner.prune(input, output, options, force, System.err);
        s.notes().forEach(n -> System.out.println("  " + n));
        System.out.printf("wrote %s: %.3f MB in %.1f s%n", s.output(), s.bytes() / 1e6, s.seconds());
        s.tensorsByFormat().forEach((format, n) -> System.out.printf("  %-30s %d tensors%n", format, n));
        return 0;
    }
}
