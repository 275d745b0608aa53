package dev.lathe.cli;

import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.engine.EngineCore;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.engine.TokenEvent;
import dev.lathe.core.kv.KvPoolSize;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Throughput of the batching engine: B requests of random prompt ids decoded together (greedy,
 * end-of-sequence ignored, as llama-bench does), and time to first token for B requests sharing
 * a long prompt prefix, with and without the prefix cache. Steps are timed one by one on an
 * {@link EngineCore}, so prefill and decode are told apart exactly.
 */
final class BatchThroughput {
    private static final int BLOCK_SIZE = EngineConfig.DEFAULT_BLOCK_SIZE;

    /** Prefill and decode tokens/s at one batch size. */
    record BatchResult(int batch, Throughput.Figure prefill, Throughput.Figure decode) {
    }

    /** Per-repeat medians over the requests of time to first token, in milliseconds. */
    record PrefixResult(Throughput.Figure withoutCache, Throughput.Figure withCache, long cachedTokensPerRequest) {
    }

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final int maxBatchedTokens;
    private final KvDtype kvDtype;

    BatchThroughput(LlamaModel model, Tokenizer tokenizer, int maxBatchedTokens, KvDtype kvDtype) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.maxBatchedTokens = maxBatchedTokens;
        this.kvDtype = kvDtype;
    }

    private EngineConfig config(int requests, int tokensEach, int maxRunning, boolean prefixCaching) {
        LlamaConfig c = model.config();
        long perBlock = KvPoolSize.bytesPerBlock(c.layers(), BLOCK_SIZE, c.kvHeads(), c.headDim(), kvDtype);
        long blocks = (long) requests * ((tokensEach + BLOCK_SIZE - 1) / BLOCK_SIZE + 1);
        long heap = Runtime.getRuntime().maxMemory();
        if (blocks * perBlock > heap / 10 * 8) {
            throw new IllegalArgumentException(requests + " requests of " + tokensEach + " tokens need " + (blocks * perBlock >> 20)
                    + " MB of KV cache, more than 80% of the JVM heap (" + (heap >> 20) + " MB); use smaller --batch or token counts");
        }
        // NOTE: the pool holds every request at once, so the figures measure batching, not preemption.
        return new EngineConfig(blocks * perBlock, BLOCK_SIZE,
                new SchedulerConfig(Math.max(maxBatchedTokens, maxRunning), maxRunning), prefixCaching, null, kvDtype);
    }

    BatchResult measureBatch(int batch, int promptTokens, int genTokens, int repeats) {
        int vocab = model.config().vocabSize();
        if (promptTokens + genTokens > model.config().contextLength()) {
            throw new IllegalArgumentException("--prompt-tokens + --gen-tokens = " + (promptTokens + genTokens)
                    + " exceeds the model's context length " + model.config().contextLength());
        }
        SplittableRandom random = new SplittableRandom(7);
        double[] prefill = new double[repeats];
        double[] decode = new double[repeats];
        try (EngineCore core = new EngineCore(model, tokenizer, config(batch, promptTokens + genTokens, batch, false))) {
            for (int r = -1; r < repeats; r++) { // one untimed warm-up round for the JIT
                for (int i = 0; i < batch; i++) {
                    core.add(Request.ofTokens("b" + i, random.ints(promptTokens, 0, vocab).toArray(),
                            SamplingParams.greedy().withMaxNewTokens(genTokens)).withIgnoreEos(true), null);
                }
                long prefillNanos = 0;
                long prefillCount = 0;
                long decodeNanos = 0;
                long decodeCount = 0;
                boolean decoding = false;
                while (core.hasWork()) {
                    long start = System.nanoTime();
                    EngineCore.StepResult step = core.step();
                    long nanos = System.nanoTime() - start;
                    decoding |= step.isDecodeOnly();
                    if (!decoding) {
                        prefillNanos += nanos;
                        prefillCount += step.tokens();
                    } else if (step.isDecodeOnly() && step.sequences() == batch) {
                        decodeNanos += nanos;
                        decodeCount += step.tokens();
                    }
                }
                if (r >= 0) {
                    prefill[r] = prefillCount * 1e9 / Math.max(1, prefillNanos);
                    decode[r] = decodeCount * 1e9 / Math.max(1, decodeNanos);
                }
            }
        }
        return new BatchResult(batch, Throughput.Figure.of(prefill), Throughput.Figure.of(decode));
    }

    PrefixResult measureSharedPrefix(int requests, int prefixTokens, int ownTokens, int repeats) {
        int vocab = model.config().vocabSize();
        if (prefixTokens + ownTokens + 1 > model.config().contextLength()) {
            throw new IllegalArgumentException("--shared-prefix " + prefixTokens + " plus " + ownTokens
                    + " own prompt tokens exceeds the model's context length " + model.config().contextLength());
        }
        double[][] ttft = new double[2][repeats];
        long cached = 0;
        for (int cache = 0; cache < 2; cache++) {
            SplittableRandom random = new SplittableRandom(11);
            try (EngineCore core = new EngineCore(model, tokenizer,
                    config(requests + 1, prefixTokens + ownTokens + 1, requests, cache == 1))) {
                for (int r = -1; r < repeats; r++) {
                    core.scheduler().kv().clearPrefixCache();
                    // NOTE: the untimed warm-up round (r = -1) is small: it only has to get the code compiled.
                    int[] prefix = random.ints(r < 0 ? Math.min(prefixTokens, 64) : prefixTokens, 0, vocab).toArray();
                    // A first request with the prefix, as a system prompt sent before: it fills the cache.
                    run(core, List.of(prefixed("warm", prefix, ownTokens, vocab, random)));
                    List<Request> batch = new ArrayList<>();
                    for (int i = 0; i < (r < 0 ? Math.min(requests, 4) : requests); i++) {
                        batch.add(prefixed("p" + i, prefix, ownTokens, vocab, random));
                    }
                    List<RequestOutput> outputs = run(core, batch);
                    double[] firstTokenMs = outputs.stream().mapToDouble(o -> o.firstTokenNanos() / 1e6).toArray();
                    if (r >= 0) {
                        ttft[cache][r] = Throughput.Figure.of(firstTokenMs).median();
                        if (cache == 1) {
                            cached = outputs.getFirst().cachedPromptTokens();
                        }
                    }
                }
            }
        }
        return new PrefixResult(Throughput.Figure.of(ttft[0]), Throughput.Figure.of(ttft[1]), cached);
    }

    private static Request prefixed(String id, int[] prefix, int ownTokens, int vocab, SplittableRandom random) {
        int[] prompt = Arrays.copyOf(prefix, prefix.length + ownTokens);
        for (int i = prefix.length; i < prompt.length; i++) {
            prompt[i] = random.nextInt(vocab);
        }
        return Request.ofTokens(id, prompt, SamplingParams.greedy().withMaxNewTokens(1)).withIgnoreEos(true);
    }

    private static List<RequestOutput> run(EngineCore core, List<Request> requests) {
        List<RequestOutput> outputs = new ArrayList<>();
        for (Request r : requests) {
            core.add(r, new EngineCore.RequestListener() {
                @Override
                public void onToken(TokenEvent event) {
                }

                @Override
                public void onFinished(RequestOutput output) {
                    outputs.add(output);
                }
            });
        }
        while (core.hasWork()) {
            core.step();
        }
        return outputs;
    }
}
