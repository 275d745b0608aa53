package dev.lathe.tools.quant;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.tensor.WeightFormat;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.util.Map;

/** Runs GPTQ or AWQ over a model, layer by layer, on calibration text. */
final class CalibratedQuantization {
    private CalibratedQuantization() {
    }

    static ModelQuantizer.Calibrated run(LoadedModel model, Map<String, WeightFormat> plan, QuantOptions options,
                                         Arena arena, PrintStream log) {
        throw new UnsupportedOperationException(options.method() + " is not implemented yet");
    }
}
