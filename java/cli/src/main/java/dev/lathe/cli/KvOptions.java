package dev.lathe.cli;

import dev.lathe.core.backend.KvDtype;
import picocli.CommandLine.Option;

/** The KV cache's element type, shared by generate, batch, bench and serve. */
final class KvOptions {
    @Option(names = "--kv-dtype", paramLabel = "TYPE",
            description = "KV cache element type: f32, f16 or bf16 (f16/bf16: half the bytes per token, so twice the"
                    + " tokens in the same --kv-memory; cpu and cuda backends) (default ${DEFAULT-VALUE}).")
    String kvDtype = "f32";

    /** The parsed type; a bad value is an IllegalArgumentException naming the option and the choices. */
    KvDtype dtype() {
        return KvDtype.parse(kvDtype, "--kv-dtype");
    }
}
