package dev.lathe.cli;

import dev.lathe.core.generate.EarlyExit;
import picocli.CommandLine.Option;

/** {@code --early-exit} and {@code --early-exit-layers}, shared by generate and bench. */
final class EarlyExitOptions {
    @Option(names = "--early-exit", paramLabel = "THRESHOLD",
            description = "Early exit: a decode step stops after a checked layer whose output head gives its top token at least"
                    + " this softmax probability, in (0, 1]; the skipped layers' K/V are filled from the exited hidden state.")
    Float threshold;

    @Option(names = "--early-exit-layers", split = ",", paramLabel = "L",
            description = "With --early-exit: after how many layers to check, ascending (default: half and three quarters of the layers).")
    int[] layers;

    /** The early-exit settings for a model of {@code modelLayers} layers, or null without --early-exit. */
    EarlyExit create(int modelLayers) {
        if (threshold == null) {
            if (layers != null) {
                throw new IllegalArgumentException("--early-exit-layers needs --early-exit");
            }
            return null;
        }
        return new EarlyExit(threshold, layers != null ? layers : EarlyExit.defaultLayers(modelLayers));
    }
}
