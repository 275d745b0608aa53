package dev.lathe.cli;

import dev.lathe.core.backend.cpu.ReadBandwidth;
import dev.lathe.core.generate.DecodeStats;
import dev.lathe.core.generate.EarlyExit;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.sched.SchedulerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/** {@code lathe bench}: prefill and decode tokens/s, the model's bytes, decode GB/s and the memory bound. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure prefill and decode speed (median and spread over repeats).")
final class BenchCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    KvOptions kvOptions;

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

    @Mixin
    SpeculationOptions speculation;

    @Mixin
    EarlyExitOptions earlyExit;

    @Option(names = "--prompt", paramLabel = "TEXT",
            description = "With --speculate or --early-exit: the prompt (default: --prompt-tokens random tokens).")
    String prompt;

    @Option(names = "--prompt-file", paramLabel = "FILE", description = "With --speculate or --early-exit: the prompt, read from FILE.")
    Path promptFile;

    @Override
    public Integer call() {
        if (promptTokens < 1 || genTokens < 1 || repeat < 1) {
            throw new IllegalArgumentException("--prompt-tokens, --gen-tokens and --repeat must each be at least 1");
        }
        if (speculation.enabled() || earlyExit.threshold != null) {
            return compareDecoding();
        }
        if (prompt != null || promptFile != null) {
            throw new IllegalArgumentException("--prompt and --prompt-file need --speculate or --early-exit");
        }
        if (batches != null) {
            return batchTable();
        }
        if (sharedPrefix != 0) {
            throw new IllegalArgumentException("--shared-prefix needs --batch");
        }
        try (ModelSession session = new ModelSession(modelOptions)) {
            report(session, promptTokens, genTokens, repeat, !noBandwidth, modelOptions.threads, kvOptions.dtype());
        }
        return 0;
    }

    private int compareDecoding() {
        if (batches != null) {
            throw new IllegalArgumentException("--speculate/--early-exit with --batch is not measured by bench; use lathe batch --speculate");
        }
        if (prompt != null && promptFile != null) {
            throw new IllegalArgumentException("give --prompt or --prompt-file, not both");
        }
        try (ModelSession session = new ModelSession(modelOptions);
             BatchCommand.Drafting drafting = new BatchCommand.Drafting(speculation.create(session, modelOptions))) {
            int layers = session.model.config().layers();
            EarlyExit exit = earlyExit.create(layers);
            Generator plain = session.generator.withKvDtype(kvOptions.dtype());
            Generator variant = plain.withSpeculation(drafting.speculation()).withEarlyExit(exit);
            int[] tokens;
            if (prompt != null || promptFile != null) {
                String text = prompt != null ? prompt : readPrompt(promptFile);
                tokens = session.generator.encodePrompt(text);
            } else {
                tokens = new SplittableRandom(7).ints(promptTokens, 0, session.model.config().vocabSize()).toArray();
            }
            System.out.printf("model      %s (%s, %s)%n", session.loaded.source(), session.loaded.format(), session.loaded.config().architecture());
            System.out.printf("backend    %s%n", session.backend.describe());
            System.out.printf("run        %d prompt tokens (%s), up to %d greedy tokens (EOS stops), plain and variant alternated;"
                    + " medians over %d repeats (min-max)%n", tokens.length, prompt != null || promptFile != null ? "given" : "random",
                    genTokens, repeat);
            DecodeComparison.Result r = DecodeComparison.measure(plain, variant, tokens, genTokens, repeat);
            DecodeStats d = r.variantStats();
            System.out.printf("plain      decode %s tokens/s%n", r.plain());
            if (drafting.speculation() != null) {
                System.out.printf("%s%n", SpeculationOptions.describe(drafting.speculation(), d.draftedTokens(), d.acceptedTokens(), d.steps()));
                System.out.printf("           %.2f tokens per target forward pass%n", (double) r.tokens() / Math.max(1, d.steps() + 1));
            }
            if (exit != null) {
                System.out.printf("early exit threshold %s after layers %s of %d: %.2f layers per decode step%n", exit.threshold(),
                        Arrays.toString(exit.exitLayers()), layers, d.layersPerStep());
            }
            System.out.printf("variant    decode %s tokens/s%n", r.variant());
            System.out.printf("speedup    %.2fx (ratio of the medians)%n", r.speedup());
            System.out.printf("agreement  %s: %d of %d tokens equal before the first difference%n",
                    r.identical() ? "identical output" : "outputs differ", r.identicalPrefix(), r.tokens());
        }
        return 0;
    }

    private static String readPrompt(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
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
                    + " KV %s; medians over %d repeats (min-max)%n", promptTokens, genTokens, maxBatchedTokens,
                    kvOptions.dtype().label(), repeat);
            BatchThroughput bench = new BatchThroughput(session.model, session.tokenizer, maxBatchedTokens, kvOptions.dtype());
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

    static void report(ModelSession session, int promptTokens, int genTokens, int repeat, boolean bandwidth, int threads,
                       KvDtype kvDtype) {
        long bytesPerToken = session.model.weightBytesPerToken();
        System.out.printf("model      %s (%s, %s)%n", session.loaded.source(), session.loaded.format(), session.loaded.config().architecture());
        System.out.printf("backend    %s%n", session.backend.describe());
        System.out.printf("weights    %.1f MB in the file, %.1f MB read per decoded token%n",
                session.loaded.weightBytes() / 1e6, bytesPerToken / 1e6);
        long kernelBytes = session.model.kernelBytesPerToken();
        if (kernelBytes != bytesPerToken) {
            System.out.printf("re-laid    %.1f MB per decoded token as the CPU kernels read it (row tiles: Q8_0's f32 block scales, a last tile's padding);"
                    + " the GB/s and the bound below count the file's bytes%n", kernelBytes / 1e6);
        }
        System.out.printf("kv cache   %s%n", kvDtype.label());
        Throughput.Result result = Throughput.measure(session.model, promptTokens, genTokens, repeat, kvDtype);
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
