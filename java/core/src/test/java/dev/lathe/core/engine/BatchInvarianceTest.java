package dev.lathe.core.engine;

import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.BatchInvariance;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A request's log-probabilities are the same bits whether it runs alone or in a batch with
 * others, for the formats the CPU backend keeps in row tiles (Q8_0, Q4_0, F16, BF16 here; the
 * K-quants, which core cannot write, in tools' KQuantTilesTest): their products do not depend on
 * how many inputs share a matmul. Alone, every matmul of its decode steps has one input; in the
 * batch it has up to eight, and the others' prompts and decodes change what shares each step
 * ({@link BatchInvariance}).
 *
 * <p>NOTE: this fails with {@code -Dlathe.cpu.repack=off} (tried: ggml's block kernels sum one
 * input, four inputs and the dequantized rows of eight or more in three different orders).
 */
class BatchInvarianceTest {

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "F16", "BF16"})
    void aRequestsLogprobsDoNotDependOnItsBatch(GgmlType type, @TempDir Path tmp) {
        Path file = tmp.resolve("m.gguf");
        SyntheticModel.small(type).write(file);
        BatchInvariance.check(file, type.name());
    }
}
