package dev.lathe.cli;

import dev.lathe.core.backend.cpu.ReadBandwidth;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

/** {@code lathe bench}: prefill and decode tokens/s, the model's bytes, decode GB/s and the memory bound. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure prefill and decode speed (median and spread over repeats).")
final class BenchCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt-tokens", paramLabel = "P", description = "Prompt length (default ${DEFAULT-VALUE}).")
    int promptTokens = 128;

    @Option(names = "--gen-tokens", paramLabel = "G", description = "Tokens to decode (default ${DEFAULT-VALUE}).")
    int genTokens = 64;

    @Option(names = "--repeat", paramLabel = "R", description = "Repeats; figures are medians (default ${DEFAULT-VALUE}).")
    int repeat = 5;

    @Option(names = "--no-bandwidth", description = "Skip measuring the machine's read bandwidth.")
    boolean noBandwidth;

    @Override
    public Integer call() {
        if (promptTokens < 1 || genTokens < 1 || repeat < 1) {
            throw new IllegalArgumentException("--prompt-tokens, --gen-tokens and --repeat must each be at least 1");
        }
        try (ModelSession session = new ModelSession(modelOptions)) {
            report(session, promptTokens, genTokens, repeat, !noBandwidth, modelOptions.threads);
        }
        return 0;
    }

    static void report(ModelSession session, int promptTokens, int genTokens, int repeat, boolean bandwidth, int threads) {
        long bytesPerToken = session.model.weightBytesPerToken();
        System.out.printf("model      %s (%s, %s)%n", session.loaded.source(), session.loaded.format(), session.loaded.config().architecture());
        System.out.printf("backend    %s%n", session.backend.describe());
        System.out.printf("weights    %.1f MB in the file, %.1f MB read per decoded token%n",
                session.loaded.weightBytes() / 1e6, bytesPerToken / 1e6);
        Throughput.Result result = Throughput.measure(session.model, promptTokens, genTokens, repeat);
        System.out.printf("prefill    %d tokens: %s tokens/s%n", promptTokens, result.prefill());
        System.out.printf("decode     %d tokens: %s tokens/s%n", genTokens, result.decode());
        double decodeGbs = result.decode().median() * bytesPerToken / 1e9;
        System.out.printf("decode     %.2f GB/s of weights read (median)%n", decodeGbs);
        if (bandwidth) {
            long bufferBytes = Math.max(256L << 20, Math.min(1L << 30, 2 * bytesPerToken));
            double readGbs = ReadBandwidth.measure(bufferBytes, threads, 5);
            double bound = readGbs * 1e9 / bytesPerToken;
            System.out.printf("memory     %.2f GB/s read bandwidth at %d threads (measured now, %d MB buffer)%n",
                    readGbs, threads, bufferBytes >> 20);
            System.out.printf("bound      %.2f tokens/s = read bandwidth / bytes per token; decode is at %.0f%% of it%n",
                    bound, 100 * result.decode().median() / bound);
        }
    }
}
