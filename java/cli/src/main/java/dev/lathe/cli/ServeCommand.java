package dev.lathe.cli;

import dev.lathe.core.engine.Engine;
import dev.lathe.core.engine.EngineConfig;
import dev.lathe.core.kv.KvPoolSize;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.server.ChatTemplate;
import dev.lathe.server.OpenAiServer;
import dev.lathe.server.ServerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.concurrent.Callable;

/**
 * {@code lathe serve}: the OpenAI-compatible HTTP server (lathe-server) over the batching engine.
 * Runs until SIGTERM / Ctrl-C, which drains in-flight requests for the grace period and exits.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API: /v1/completions, /v1/chat/completions, /v1/models, /health, /metrics.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--host", paramLabel = "ADDRESS", description = "Address to bind (default ${DEFAULT-VALUE}: this machine only).")
    String host = "127.0.0.1";

    @Option(names = "--port", paramLabel = "PORT", description = "TCP port (default ${DEFAULT-VALUE}).")
    int port = ServerConfig.DEFAULT_PORT;

    @Option(names = "--served-model-name", paramLabel = "NAME", description = "Model id clients send (default: the model file's name).")
    String servedModelName;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Require 'Authorization: Bearer KEY' on /v1 requests.")
    String apiKey;

    @Option(names = "--max-batch", paramLabel = "N", description = "Most sequences running at once (default ${DEFAULT-VALUE}).")
    int maxBatch = SchedulerConfig.DEFAULT_MAX_RUNNING;

    @Option(names = "--max-batched-tokens", paramLabel = "N", description = "Token budget of one step (default ${DEFAULT-VALUE}).")
    int maxBatchedTokens = SchedulerConfig.DEFAULT_MAX_BATCHED_TOKENS;

    @Option(names = "--max-queue", paramLabel = "N",
            description = "Requests accepted beyond the running ones; past it, 429 (default ${DEFAULT-VALUE}).")
    int maxQueue = ServerConfig.DEFAULT_MAX_QUEUED;

    @Option(names = "--kv-memory", paramLabel = "SIZE", description = "KV cache budget, e.g. 512MB, 2GB (default ${DEFAULT-VALUE}).")
    String kvMemory = "512MB";

    @Option(names = "--no-prefix-cache", description = "Do not reuse the KV blocks of shared prompt prefixes.")
    boolean noPrefixCache;

    @Option(names = "--shutdown-grace", paramLabel = "SECONDS",
            description = "On SIGTERM, how long in-flight requests may finish before they are aborted (default ${DEFAULT-VALUE}).")
    int shutdownGraceSeconds = (int) ServerConfig.DEFAULT_GRACE.toSeconds();

    @Mixin
    SpeculationOptions speculation;

    @Mixin
    KvOptions kvOptions;

    @Override
    public Integer call() throws Exception {
        if (shutdownGraceSeconds < 0) {
            throw new IllegalArgumentException("--shutdown-grace must be >= 0, got " + shutdownGraceSeconds);
        }
        long kvBytes = KvPoolSize.parseBytes(kvMemory, "--kv-memory");
        EngineConfig engineConfig = new EngineConfig(kvBytes, EngineConfig.DEFAULT_BLOCK_SIZE,
                new SchedulerConfig(maxBatchedTokens, maxBatch), !noPrefixCache).withKvDtype(kvOptions.dtype());
        String name = servedModelName != null ? servedModelName : defaultName();
        ServerConfig config = new ServerConfig(host, port, name, apiKey, maxQueue, ServerConfig.DEFAULT_MAX_BODY_BYTES,
                Duration.ofSeconds(shutdownGraceSeconds));
        speculation.enabled(); // option errors before the model loads
        ModelSession session = new ModelSession(modelOptions);
        BatchCommand.Drafting drafting;
        try {
            drafting = new BatchCommand.Drafting(speculation.create(session, modelOptions));
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
        Engine engine = new Engine(session.model, session.tokenizer, engineConfig.withSpeculation(drafting.speculation()));
        OpenAiServer server;
        try {
            var tokenizer = session.tokenizer;
            String bos = tokenizer.bosId() >= 0 ? tokenizer.piece(tokenizer.bosId()) : "";
            String eos = tokenizer.eosId() >= 0 ? tokenizer.piece(tokenizer.eosId()) : "";
            ChatTemplate template = ChatTemplate.forModel(session.loaded, modelOptions.tokenizer, bos, eos);
            server = new OpenAiServer(engine, tokenizer, session.model.config().contextLength(), template, maxBatch, config);
            server.start();
            System.err.println("lathe: serving '" + name + "' (" + session.backend.name() + ", chat template: " + template.source()
                    + ") on http://" + host + ":" + server.port() + "/v1");
            System.err.println("lathe: " + engine.describeKvPool());
            if (apiKey == null && !isLoopback(host)) {
                System.err.println("lathe: warning: listening on " + host + " without --api-key");
            }
        } catch (Exception e) {
            engine.close();
            drafting.close();
            session.close();
            throw e;
        }
        OpenAiServer running = server;
        // NOTE: SIGTERM and Ctrl-C run this hook: drain, abort what is left after the grace period, free the engine.
        Thread hook = new Thread(() -> {
            System.err.println("lathe: shutting down (grace " + shutdownGraceSeconds + " s)");
            running.shutdown();
            engine.close();
            drafting.close();
            session.close();
        }, "lathe-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        running.join();
        return 0;
    }

    private String defaultName() {
        String file = modelOptions.model.getFileName().toString();
        int dot = file.lastIndexOf('.');
        return dot > 0 ? file.substring(0, dot) : file;
    }

    private static boolean isLoopback(String host) {
        return host.equals("127.0.0.1") || host.equals("::1") || host.equals("localhost");
    }
}
