package dev.lathe.server;

import java.time.Duration;

/**
 * How the HTTP server is set up (the engine's own limits live in its EngineConfig).
 *
 * @param host              address to bind; loopback unless the operator says otherwise
 * @param port              TCP port; 0 picks a free one (tests)
 * @param servedModelName   the model id clients send and {@code /v1/models} lists
 * @param apiKey            the bearer key every /v1 request must carry, or null for none
 * @param maxQueuedRequests requests accepted beyond the engine's running sequences; past it, 429
 * @param maxBodyBytes      largest request body read; past it, 413
 * @param shutdownGrace     how long a shutdown lets in-flight requests finish before aborting them
 */
public record ServerConfig(String host, int port, String servedModelName, String apiKey, int maxQueuedRequests,
                           int maxBodyBytes, Duration shutdownGrace) {
    public static final int DEFAULT_PORT = 8000;
    public static final int DEFAULT_MAX_QUEUED = 256;
    public static final int DEFAULT_MAX_BODY_BYTES = 4 << 20;
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(30);
    /** Bounds {@link #maxQueuedRequests}: each queued request holds a thread and its prompt. */
    public static final int MAX_QUEUED_LIMIT = 100_000;

    public ServerConfig {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("--host is empty");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port must be in [0, 65535], got " + port);
        }
        if (servedModelName == null || servedModelName.isBlank()) {
            throw new IllegalArgumentException("--served-model-name is empty");
        }
        if (apiKey != null && apiKey.isBlank()) {
            throw new IllegalArgumentException("--api-key is empty");
        }
        if (maxQueuedRequests < 0 || maxQueuedRequests > MAX_QUEUED_LIMIT) {
            throw new IllegalArgumentException("--max-queue must be in [0, " + MAX_QUEUED_LIMIT + "], got " + maxQueuedRequests);
        }
        if (maxBodyBytes < 1024) {
            throw new IllegalArgumentException("max body size must be at least 1024 bytes, got " + maxBodyBytes);
        }
        if (shutdownGrace == null || shutdownGrace.isNegative()) {
            throw new IllegalArgumentException("shutdown grace must be >= 0, got " + shutdownGrace);
        }
    }

    public static ServerConfig loopback(String servedModelName) {
        return new ServerConfig("127.0.0.1", DEFAULT_PORT, servedModelName, null, DEFAULT_MAX_QUEUED,
                DEFAULT_MAX_BODY_BYTES, DEFAULT_GRACE);
    }

    public ServerConfig withPort(int value) {
        return new ServerConfig(host, value, servedModelName, apiKey, maxQueuedRequests, maxBodyBytes, shutdownGrace);
    }

    public ServerConfig withApiKey(String value) {
        return new ServerConfig(host, port, servedModelName, value, maxQueuedRequests, maxBodyBytes, shutdownGrace);
    }

    public ServerConfig withMaxQueuedRequests(int value) {
        return new ServerConfig(host, port, servedModelName, apiKey, value, maxBodyBytes, shutdownGrace);
    }

    public ServerConfig withShutdownGrace(Duration value) {
        return new ServerConfig(host, port, servedModelName, apiKey, maxQueuedRequests, maxBodyBytes, value);
    }
}
