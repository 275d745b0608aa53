package dev.lathe.server;

import dev.lathe.core.engine.Engine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ToDoubleFunction;

/**
 * What {@code GET /metrics} reports, in the Prometheus text format through Micrometer: requests by
 * endpoint and status, in-flight requests, running and waiting sequences, KV blocks, prefix-cache
 * hit rate, time to first token and inter-token latency histograms, generated tokens and tokens/s.
 */
public final class ServerMetrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Engine engine;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicLong promptTokens = new AtomicLong();
    private final Timer timeToFirstToken;
    private final Timer interTokenLatency;
    private final Counter generatedTokens;
    private final Counter clientDisconnects;
    private long lastRateNanos = System.nanoTime();
    private double lastRateTokens;
    private double tokensPerSecond;

    public ServerMetrics(Engine engine) {
        this.engine = engine;
        timeToFirstToken = Timer.builder("lathe.time.to.first.token")
                .description("From request arrival to its first generated token")
                .serviceLevelObjectives(millis(5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000))
                .register(registry);
        interTokenLatency = Timer.builder("lathe.inter.token.latency")
                .description("Between two tokens of one choice")
                .serviceLevelObjectives(millis(1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000))
                .register(registry);
        generatedTokens = Counter.builder("lathe.generated.tokens").description("Tokens generated").register(registry);
        clientDisconnects = Counter.builder("lathe.client.disconnects")
                .description("Requests aborted because the client went away").register(registry);
        Gauge.builder("lathe.requests.in.flight", inFlight, AtomicInteger::get)
                .description("Requests accepted and not yet answered").register(registry);
        gauge("lathe.sequences.running", "Sequences holding KV blocks", e -> e.runningSequences());
        gauge("lathe.sequences.waiting", "Sequences queued in the scheduler (the engine's queue length)", e -> e.waitingSequences());
        gauge("lathe.kv.blocks.used", "KV blocks held by sequences", e -> e.usage().used());
        gauge("lathe.kv.blocks.cached", "KV blocks keeping a reusable prefix", e -> e.usage().cached());
        gauge("lathe.kv.blocks.free", "KV blocks with nothing worth keeping", e -> e.usage().free());
        gauge("lathe.kv.blocks.capacity", "KV blocks in the pool", e -> e.usage().total());
        gauge("lathe.prefix.cache.hit.rate", "Prompt tokens found in the prefix cache, over all prompt tokens",
                e -> promptTokens.get() == 0 ? 0 : (double) e.stats().prefixHitTokens() / promptTokens.get());
        Gauge.builder("lathe.generation.tokens.per.second", this, ServerMetrics::refreshTokensPerSecond)
                .description("Generated tokens per second since the previous scrape").register(registry);
    }

    private void gauge(String name, String description, ToDoubleFunction<Engine> value) {
        Gauge.builder(name, engine, value).description(description).register(registry);
    }

    private static Duration[] millis(long... values) {
        Duration[] out = new Duration[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Duration.ofMillis(values[i]);
        }
        return out;
    }

    private synchronized double refreshTokensPerSecond() {
        long now = System.nanoTime();
        double tokens = generatedTokens.count();
        if (now - lastRateNanos >= 100_000_000L) {
            tokensPerSecond = (tokens - lastRateTokens) * 1e9 / (now - lastRateNanos);
            lastRateNanos = now;
            lastRateTokens = tokens;
        }
        return tokensPerSecond;
    }

    /** Counts an answered request under its endpoint and HTTP status. */
    public void requestDone(String endpoint, int status) {
        registry.counter("lathe.requests", "endpoint", endpoint, "status", Integer.toString(status)).increment();
    }

    public void prompt(int tokens) {
        promptTokens.addAndGet(tokens);
    }

    public void firstToken(long nanos) {
        timeToFirstToken.record(Duration.ofNanos(nanos));
    }

    public void interToken(long nanos) {
        interTokenLatency.record(Duration.ofNanos(nanos));
    }

    public void tokens(int count) {
        generatedTokens.increment(count);
    }

    public void clientDisconnected() {
        clientDisconnects.increment();
    }

    public AtomicInteger inFlight() {
        return inFlight;
    }

    public String scrape() {
        return registry.scrape();
    }
}
