package dev.lathe.cli;

import dev.lathe.core.backend.cpu.ReadBandwidth;
import dev.lathe.core.sched.SchedulerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;


import java.util.List;
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

    @Option(names = "--batch", split = ",", paramLabel = "B",
            description = "Batch sizes for the batching engine, e.g. 1,8,32,64: prints a prefill/decode throughput table instead.")
    List<Integer> batches;

    @Option(names = "--shared-prefix", paramLabel = "TOKENS",
            description = "With --batch: also time to first token of B requests (B = the largest batch) sharing a prompt prefix"
                    + " of TOKENS tokens, with and without the prefix cache.")
    int sharedPrefix;

    @Option(names = "--max-batched-tokens", paramLabel = "N", description = "With --batch: token budget of one step (default ${DEFAULT-VALUE}).")
    int maxBatchedTokens = SchedulerConfig.DEFAULT_MAX_BATCHED_TOKENS;

    @Override
    public Integer call() {
        if (promptTokens < 1 || genTokens < 1 || repeat < 1) {
            throw new IllegalArgumentException("--prompt-tokens, --gen-tokens and --repeat must each be at least 1");
        }
        if (batches != null) {
            return batchTable();
        }
        if (sharedPrefix != 0) {
            throw new IllegalArgumentException("--shared-prefix needs --batch");
        }
        try (ModelSession session = new ModelSession(modelOptions)) {
            report(session, promptTokens, genTokens, repeat, !noBandwidth, modelOptions.threads);
        }
        return 0;
    }

    private int batchTable() {
        for (int b : batches) {
            if (b < 1 || b > 4096) {
                throw new IllegalArgumentException("--batch: each size must be in [1, 4096], got " + b);
            }
        }
        if (sharedPrefix < 0 || maxBatchedTokens < 1) {
            throw new IllegalArgumentException("--shared-prefix must be >= 0 and --max-batched-tokens >= 1");
        }
        try (ModelSession session = new ModelSession(modelOptions)) {
            System.out.printf("model      %s (%s, %s)%n", session.loaded.source(), session.loaded.format(), session.loaded.config().architecture());
            System.out.printf("backend    %s%n", session.backend.describe());
            System.out.printf("weights    %.1f MB read per step%n", session.model.weightBytesPerToken() / 1e6);
            System.out.printf("engine     %d prompt + %d generated tokens per request, greedy, EOS ignored; budget %d tokens/step;"
                    + " medians over %d repeats (min-max)%n", promptTokens, genTokens, maxBatchedTokens, repeat);
            BatchThroughput bench = new BatchThroughput(session.model, session.tokenizer, maxBatchedTokens);
            System.out.printf("%6s  %-30s  %-30s  %s%n", "batch", "prefill tokens/s", "decode tokens/s", "decode vs first row");
            double base = 0;
            for (int b : batches) {
                BatchThroughput.BatchResult r = bench.measureBatch(b, promptTokens, genTokens, repeat);
                if (base == 0) {
                    base = r.decode().median();
                }
                System.out.printf("%6d  %-30s  %-30s  %.2fx%n", b, r.prefill(), r.decode(), r.decode().median() / base);
            }
            if (sharedPrefix > 0) {
                int requests = batches.stream().mapToInt(Integer::intValue).max().orElseThrow();
                int own = 16;
                BatchThroughput.PrefixResult p = bench.measureSharedPrefix(requests, sharedPrefix, own, repeat);
                System.out.printf("prefix     %d requests, each a shared %d-token prefix + %d own tokens, after one request"
                        + " that saw the prefix; time to first token, median over the requests (ms):%n", requests, sharedPrefix, own);
                System.out.printf("  no cache   %s%n", p.withoutCache());
                System.out.printf("  cache      %s  (%d prompt tokens per request from the cache)%n", p.withCache(), p.cachedTokensPerRequest());
                System.out.printf("  speedup    %.2fx%n", p.withoutCache().median() / p.withCache().median());
            }
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
