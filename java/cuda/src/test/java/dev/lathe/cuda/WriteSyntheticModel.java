package dev.lathe.cuda;

import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.tensor.GgmlType;
import java.nio.file.Path;

/**
 * Writes the issue's ~200M-parameter synthetic benchmark model as GGUF, for {@code lathe bench}
 * on the GPU machine (which has no model files): {@code WriteSyntheticModel OUT.gguf TYPE}.
 */
public final class WriteSyntheticModel {
    private WriteSyntheticModel() {
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: WriteSyntheticModel OUT.gguf TYPE (F32, F16, Q8_0, Q4_0)");
            System.exit(2);
        }
        SyntheticModel model = SyntheticModel.bench200M(GgmlType.valueOf(args[1]));
        model.write(Path.of(args[0]));
        System.out.println("wrote " + args[0] + ": " + model.parameterCount() / 1_000_000 + "M parameters, " + args[1]);
    }
}
