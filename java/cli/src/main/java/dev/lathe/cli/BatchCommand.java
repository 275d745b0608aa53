package dev.lathe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.engine.Completion;
import dev.lathe.core.engine.Engine;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.engine.RequestHandle;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.engine.TokenLogprobs;
import dev.lathe.core.kv.KvPoolSize;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.spec.Speculation;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * {@code lathe batch}: offline inference over a JSONL file with the batching engine. Results are
 * appended to the output as each request finishes, so a crash loses only the requests in flight,
 * and a rerun skips every id already in the output.
 */
@Command(name = "batch", mixinStandardHelpOptions = true,
        description = "Run every prompt of a JSONL file through the batching engine; results go to a JSONL file as they finish.")
final class BatchCommand implements Callable<Integer> {
    enum BadLinePolicy { skip, reject }

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--input", required = true, paramLabel = "FILE",
            description = "One request per line: {\"id\": ..., \"prompt\": \"...\"} or \"prompt_token_ids\": [...], with optional "
                    + "max_tokens, temperature, top_k, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty, "
                    + "seed, stop, n, priority, logprobs, ignore_eos.")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "FILE", description = "Results, one JSON line per request, appended.")
    Path output;

    @Option(names = "--max-batch", paramLabel = "N", description = "Most sequences running at once (default ${DEFAULT-VALUE}).")
    int maxBatch = SchedulerConfig.DEFAULT_MAX_RUNNING;

    @Option(names = "--max-batched-tokens", paramLabel = "N", description = "Token budget of one step (default ${DEFAULT-VALUE}).")
    int maxBatchedTokens = SchedulerConfig.DEFAULT_MAX_BATCHED_TOKENS;

    @Option(names = "--kv-memory", paramLabel = "SIZE", description = "KV cache budget, e.g. 512MB, 2GB (default ${DEFAULT-VALUE}).")
    String kvMemory = "512MB";

    @Option(names = "--no-prefix-cache", description = "Do not reuse the KV blocks of shared prompt prefixes.")
    boolean noPrefixCache;

    @Option(names = "--on-bad-line", paramLabel = "POLICY",
            description = "skip: report a malformed line (with its number) and go on; reject: report every malformed line and run nothing (default ${DEFAULT-VALUE}).")
    BadLinePolicy onBadLine = BadLinePolicy.skip;

    @Option(names = "--no-progress", description = "No progress bar on stderr.")
    boolean noProgress;

    @Mixin
    SpeculationOptions speculation;

    @Mixin
    KvOptions kvOptions;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        long kvBytes = KvPoolSize.parseBytes(kvMemory, "--kv-memory");
        long heap = Runtime.getRuntime().maxMemory();
        if (modelOptions.backend.equals("cpu") && kvBytes > heap / 10 * 8) {
            // NOTE: the CPU backend keeps the KV pool on the Java heap; refuse before allocating, not with an OutOfMemoryError.
            throw new IllegalArgumentException("--kv-memory " + kvMemory + " is more than 80% of the JVM heap (" + (heap >> 20)
                    + " MB); lower it, or raise the heap with LATHE_JAVA_OPTS=-Xmx...");
        }
        EngineConfig config = new EngineConfig(kvBytes, EngineConfig.DEFAULT_BLOCK_SIZE,
                new SchedulerConfig(maxBatchedTokens, maxBatch), !noPrefixCache).withKvDtype(kvOptions.dtype());
        PrintStream err = System.err;
        Map<String, Integer> done = new HashMap<>();
        if (Files.exists(output)) {
            dropUnfinishedLastLine(output, err);
            BatchInput.collectDoneIds(Files.readAllLines(output, StandardCharsets.UTF_8), done);
        }
        SamplingParams defaults = sampling.toParams().withSeed(sampling.seed != null ? sampling.seed : 0L);

        List<BatchInput.Line> todo = new ArrayList<>();
        int bad = 0;
        int skippedDone = 0;
        Map<String, Integer> seen = new HashMap<>();
        try (BufferedReader reader = Files.newBufferedReader(input, StandardCharsets.UTF_8)) {
            String text;
            int number = 0;
            while ((text = reader.readLine()) != null) {
                number++;
                if (text.isBlank()) {
                    continue;
                }
                BatchInput.Line line = BatchInput.parse(number, text, defaults);
                if (line.ok() && seen.containsKey(line.key())) {
                    line = new BatchInput.Line(number, line.id(), line.key(), null,
                            "line " + number + ": id " + line.key() + " already used on line " + seen.get(line.key()));
                }
                if (!line.ok()) {
                    bad++;
                    err.println("lathe: " + input + ": " + line.error());
                    continue;
                }
                seen.put(line.key(), number);
                if (done.containsKey(line.key())) {
                    skippedDone++;
                } else {
                    todo.add(line);
                }
            }
        }
        if (bad > 0 && onBadLine == BadLinePolicy.reject) {
            err.println("lathe: " + input + ": " + bad + " malformed line(s); nothing was run (--on-bad-line reject)");
            return 2;
        }
        if (skippedDone > 0) {
            err.println("lathe: " + skippedDone + " request(s) already in " + output + ", skipped");
        }

        int failed = 0;
        speculation.enabled(); // option errors before the model loads
        try (ModelSession session = new ModelSession(modelOptions);
             Drafting drafting = new Drafting(speculation.create(session, modelOptions));
             Engine engine = new Engine(session.model, session.tokenizer, config.withSpeculation(drafting.speculation()));
             BufferedWriter out = Files.newBufferedWriter(output, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                     StandardOpenOption.APPEND)) {
            err.printf("lathe batch: %d request(s) to run, %s, %s; %s%n", todo.size(), session.backend.describe(),
                    engine.describeKvPool(), engine.usage());
            // NOTE: a bounded window of requests in flight: each holds sampler buffers of the vocabulary's size,
            // so a million-line input must not be submitted at once.
            int window = Math.max(2 * maxBatch, 16);
            LinkedBlockingQueue<Object[]> finished = new LinkedBlockingQueue<>();
            ProgressLine progress = noProgress ? null : new ProgressLine(err, todo.size());
            int next = 0;
            int inFlight = 0;
            int completed = 0;
            long tokens = 0;
            while (next < todo.size() || inFlight > 0) {
                while (next < todo.size() && inFlight < window) {
                    BatchInput.Line line = todo.get(next++);
                    try {
                        RequestHandle handle = engine.submit(line.request());
                        inFlight++;
                        handle.result().whenComplete((result, error) -> finished.add(new Object[] {line, result, error}));
                    } catch (IllegalArgumentException e) {
                        failed++;
                        err.println((progress != null ? "\n" : "") + "lathe: " + input + ": line " + line.number() + ": " + e.getMessage());
                        if (progress != null) {
                            progress.update(completed + failed, tokens, false);
                        }
                    }
                }
                if (inFlight == 0) {
                    continue;
                }
                Object[] item = take(finished);
                inFlight--;
                BatchInput.Line line = (BatchInput.Line) item[0];
                if (item[2] != null) {
                    throw new IllegalStateException("the engine failed on line " + line.number(), (Throwable) item[2]);
                }
                RequestOutput result = (RequestOutput) item[1];
                out.write(JSON.writeValueAsString(toJson(line, result)));
                out.write('\n');
                out.flush();
                completed++;
                tokens += result.completionTokens();
                if (progress != null) {
                    progress.update(completed + failed, tokens, false);
                }
            }
            if (progress != null) {
                progress.finish(completed + failed, tokens);
            }
            var stats = engine.stats();
            err.printf("lathe batch: %d done, %d refused, %d malformed line(s) skipped | %d tokens generated | %d prompt tokens"
                            + " from the prefix cache | %d preemptions%n", completed, failed, bad, stats.tokensGenerated(),
                    stats.prefixHitTokens(), stats.preemptions());
            if (drafting.speculation() != null) {
                err.println("lathe batch: " + SpeculationOptions.describe(drafting.speculation(), stats.draftedTokens(),
                        stats.acceptedTokens(), stats.verifiedSequenceSteps()) + " (a step: one sequence's verification)");
            }
        }
        return 0;
    }

    /** Closes the drafter (a draft model's file) with the engine's other resources. */
    record Drafting(Speculation speculation) implements AutoCloseable {
        @Override
        public void close() {
            if (speculation != null) {
                speculation.drafter().close();
            }
        }
    }

    private static Object[] take(LinkedBlockingQueue<Object[]> queue) {
        try {
            return queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** A crash mid-write can leave a last line without its newline: cut it off, its request runs again. */
    private static void dropUnfinishedLastLine(Path file, PrintStream err) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = channel.size();
            long keep = size;
            java.nio.ByteBuffer one = java.nio.ByteBuffer.allocate(1);
            while (keep > 0) {
                one.clear();
                channel.read(one, keep - 1);
                if (one.get(0) == '\n') {
                    break;
                }
                keep--;
            }
            if (keep < size) {
                channel.truncate(keep);
                err.println("lathe: " + file + ": dropped an unfinished last line (" + (size - keep) + " bytes); its request runs again");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    static ObjectNode toJson(BatchInput.Line line, RequestOutput result) {
        ObjectNode o = JSON.createObjectNode();
        o.set("id", line.id());
        Completion first = result.first();
        o.put("text", first.text());
        ArrayNode ids = o.putArray("token_ids");
        for (int id : first.tokenIds()) {
            ids.add(id);
        }
        o.put("finish_reason", first.finishReason());
        o.put("prompt_tokens", result.promptTokens().length);
        o.put("completion_tokens", result.completionTokens());
        o.put("cached_prompt_tokens", result.cachedPromptTokens());
        if (!first.logprobs().isEmpty()) {
            o.set("logprobs", logprobs(first.logprobs()));
        }
        if (result.completions().size() > 1) {
            ArrayNode choices = o.putArray("choices");
            for (Completion c : result.completions()) {
                ObjectNode choice = choices.addObject();
                choice.put("index", c.index());
                choice.put("text", c.text());
                ArrayNode cIds = choice.putArray("token_ids");
                for (int id : c.tokenIds()) {
                    cIds.add(id);
                }
                choice.put("finish_reason", c.finishReason());
                if (!c.logprobs().isEmpty()) {
                    choice.set("logprobs", logprobs(c.logprobs()));
                }
            }
        }
        ObjectNode timings = o.putObject("timings");
        timings.put("queued_ms", result.queuedNanos() / 1e6);
        timings.put("first_token_ms", result.firstTokenNanos() / 1e6);
        timings.put("total_ms", result.totalNanos() / 1e6);
        return o;
    }

    private static ArrayNode logprobs(List<TokenLogprobs> list) {
        ArrayNode array = JSON.createArrayNode();
        for (TokenLogprobs lp : list) {
            ObjectNode e = array.addObject();
            e.put("token", lp.token());
            e.put("logprob", lp.logprob());
            ArrayNode top = e.putArray("top");
            for (int i = 0; i < lp.topTokens().length; i++) {
                top.addObject().put("token", lp.topTokens()[i]).put("logprob", lp.topLogprobs()[i]);
            }
        }
        return array;
    }
}
