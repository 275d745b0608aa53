package dev.lathe.cli;

import dev.lathe.core.backend.KvDtype;
import picocli.CommandLine.Option;

/** The KV cache's element type, shared by generate, batch, bench, serve and eval ppl. */
final class KvOptions {
    @Option(names = "--kv-dtype", paramLabel = "TYPE",
            description = "KV cache element type: f32, f16, bf16 or int8 (f16/bf16: half the bytes per token, so twice"
                    + " the tokens in the same --kv-memory, cpu and cuda backends; int8: headDim + 4 bytes per token and"
                    + " head, about 3.8x the tokens of f32 at headDim 64-128, cpu backend only) (default ${DEFAULT-VALUE}).")
    String kvDtype = "f32";

    /** The parsed type; a bad value is an IllegalArgumentException naming the option and the choices. */
    KvDtype dtype() {
        return KvDtype.parse(kvDtype, "--kv-dtype");
    }
}
