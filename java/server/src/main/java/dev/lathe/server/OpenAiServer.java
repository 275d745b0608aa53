package dev.lathe.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.engine.Engine;
import dev.lathe.core.engine.RequestHandle;
import dev.lathe.core.tokenizer.Tokenizer;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;

/**
 * The OpenAI-compatible HTTP server over one {@link Engine}, on Jetty's core API:
 * {@code POST /v1/completions}, {@code POST /v1/chat/completions}, {@code GET /v1/models},
 * {@code GET /health}, {@code GET /metrics}.
 *
 * <p>Admission: at most {@code maxRunning + maxQueuedRequests} generation requests are in flight;
 * past that a request gets 429 with Retry-After, so memory stays bounded under any load. Each
 * request is served on its own (virtual) thread that blocks on the engine's token stream.
 *
 * <p>NOTE: a streaming client that disconnects is noticed at the next token's write, which cancels
 * its request and frees its KV blocks. Over HTTP/1.1 Jetty does not read the socket while a handler
 * runs, so a non-streaming client that disconnects is noticed only when its answer is written: its
 * request runs to its end (bounded by max_tokens and the context length).
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiServer.class);
    private static final String COMPLETIONS = "/v1/completions";
    private static final String CHAT = "/v1/chat/completions";
    private static final String MODELS = "/v1/models";

    private final ServerConfig config;
    private final int contextLength;
    private final ObjectMapper json = new ObjectMapper();
    private final RequestParser parser;
    private final CompletionRunner runner;
    private final ServerMetrics metrics;
    private final Semaphore admission;
    private final Set<RequestHandle> live = ConcurrentHashMap.newKeySet();
    private final Server server;
    private final ServerConnector connector;
    private final long createdEpochSeconds = System.currentTimeMillis() / 1000;
    private volatile boolean ready;
    private volatile boolean draining;

    /**
     * @param maxRunning the engine's cap on running sequences (its scheduler's maxRunning)
     */
    public OpenAiServer(Engine engine, Tokenizer tokenizer, int contextLength, ChatTemplate chatTemplate,
                        int maxRunning, ServerConfig config) {
        this.config = config;
        this.contextLength = contextLength;
        this.metrics = new ServerMetrics(engine);
        this.parser = new RequestParser(json, tokenizer, contextLength, config.servedModelName(), chatTemplate);
        this.runner = new CompletionRunner(engine, tokenizer, metrics, json, config.servedModelName());
        int limit = maxRunning + config.maxQueuedRequests();
        this.admission = new Semaphore(limit);

        QueuedThreadPool threads = new QueuedThreadPool(Math.max(64, Math.min(limit + 32, 1024)));
        threads.setName("lathe-http");
        // NOTE: a generation request blocks its thread until the last token; virtual threads make that cheap.
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server = new Server(threads);
        connector = new ServerConnector(server);
        connector.setHost(config.host());
        connector.setPort(config.port());
        connector.setIdleTimeout(300_000);
        server.addConnector(connector);
        server.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) {
                serve(request, response, callback);
                return true;
            }
        });
        // NOTE: shutdown() has already drained the requests; Jetty need only close the idle connections.
        server.setStopTimeout(500);
    }

    public void start() throws Exception {
        server.start();
        ready = true;
        LOG.info("serving '{}' on http://{}:{}", config.servedModelName(), config.host(), port());
    }

    /** The bound port (the chosen one when the config asked for 0). */
    public int port() {
        return connector.getLocalPort();
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    /** Blocks until the server has stopped. */
    public void join() throws InterruptedException {
        server.join();
    }

    private void serve(Request request, Response response, Callback callback) {
        long arrivalNanos = System.nanoTime();
        String path = Request.getPathInContext(request);
        String method = request.getMethod();
        String endpoint = switch (path) {
            case COMPLETIONS, CHAT, MODELS, "/health", "/metrics" -> path;
            default -> "other";
        };
        int status;
        try {
            status = switch (path) {
                case "/health" -> {
                    requireMethod(method, "GET");
                    int code = ready && !draining ? 200 : 503;
                    writeJson(response, callback, code, code == 200 ? "{\"status\":\"ok\"}" : "{\"status\":\"unavailable\"}");
                    yield code;
                }
                case "/metrics" -> {
                    requireMethod(method, "GET");
                    response.setStatus(200);
                    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
                    Content.Sink.write(response, true, metrics.scrape(), callback);
                    yield 200;
                }
                case MODELS -> {
                    requireMethod(method, "GET");
                    authorize(request);
                    writeJson(response, callback, 200, modelList());
                    yield 200;
                }
                case COMPLETIONS, CHAT -> {
                    requireMethod(method, "POST");
                    authorize(request);
                    yield generate(request, response, callback, path.equals(CHAT), arrivalNanos);
                }
                default -> throw new ApiException(404, "invalid_request_error", null, "not_found", "no such endpoint: " + method + " " + path);
            };
        } catch (ApiException e) {
            status = e.status();
            if (status == 429) {
                response.getHeaders().put(HttpHeader.RETRY_AFTER, "1");
            } else if (status == 401) {
                response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer");
            }
            writeJson(response, callback, status, e.toJson(json));
        } catch (RuntimeException e) {
            LOG.error("{} {} failed", method, path, e);
            status = 500;
            ApiException error = new ApiException(500, "server_error", null, null, "internal error: " + e.getMessage());
            if (!response.isCommitted()) {
                writeJson(response, callback, 500, error.toJson(json));
            } else {
                callback.failed(e);
            }
        }
        metrics.requestDone(endpoint, status);
    }

    private int generate(Request request, Response response, Callback callback, boolean chat, long arrivalNanos) {
        if (draining) {
            throw new ApiException(503, "server_error", null, null, "the server is shutting down");
        }
        GenerationRequest parsed = parser.parse(readBody(request), chat);
        if (!admission.tryAcquire()) {
            throw new ApiException(429, "rate_limit_exceeded", null, "queue_full",
                    "the server's queue is full; retry later");
        }
        metrics.inFlight().incrementAndGet();
        RequestHandle handle = null;
        try {
            String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
            handle = runner.submit(id, parsed);
            live.add(handle);
            RequestHandle submitted = handle;
            request.addFailureListener(failure -> submitted.cancel());
            if (!parsed.stream()) {
                writeJson(response, callback, 200, runner.complete(id, parsed, handle, arrivalNanos));
                return 200;
            }
            response.setStatus(200);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
            response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
            try {
                runner.stream(id, parsed, handle, arrivalNanos, data -> Content.Sink.write(response, false,
                        ByteBuffer.wrap(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8))));
                Content.Sink.write(response, true, ByteBuffer.allocate(0));
                callback.succeeded();
            } catch (IOException e) {
                // NOTE: the client went away mid-stream; the runner has cancelled the request, which frees its blocks.
                metrics.clientDisconnected();
                callback.failed(e);
                return 499;
            }
            return 200;
        } finally {
            if (handle != null) {
                live.remove(handle);
            }
            admission.release();  // first: in-flight reaching 0 then means the slot is free
            metrics.inFlight().decrementAndGet();
        }
    }

    private byte[] readBody(Request request) {
        long declared = request.getLength();
        if (declared > config.maxBodyBytes()) {
            throw new ApiException(413, "invalid_request_error", null, "request_too_large",
                    "the body has " + declared + " bytes; the limit is " + config.maxBodyBytes());
        }
        // NOTE: readNBytes grows its buffer as bytes arrive, so a lying Content-Length allocates nothing up front.
        byte[] body;
        try (var in = Content.Source.asInputStream(request)) {
            body = in.readNBytes(config.maxBodyBytes() + 1);
        } catch (IOException e) {
            throw ApiException.badRequest("the body could not be read: " + e.getMessage());
        }
        if (body.length > config.maxBodyBytes()) {
            throw new ApiException(413, "invalid_request_error", null, "request_too_large",
                    "the body is over the limit of " + config.maxBodyBytes() + " bytes");
        }
        return body;
    }

    private void authorize(Request request) {
        if (config.apiKey() == null) {
            return;
        }
        String header = request.getHeaders().get(HttpHeader.AUTHORIZATION);
        byte[] expected = ("Bearer " + config.apiKey()).getBytes(StandardCharsets.UTF_8);
        byte[] given = header == null ? new byte[0] : header.getBytes(StandardCharsets.UTF_8);
        if (!MessageDigest.isEqual(expected, given)) {
            throw new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                    header == null ? "missing Authorization: Bearer header" : "invalid API key");
        }
    }

    private static void requireMethod(String method, String expected) {
        if (!expected.equals(method)) {
            throw new ApiException(405, "invalid_request_error", null, "method_not_allowed",
                    method + " is not allowed here; use " + expected);
        }
    }

    private String modelList() {
        ObjectNode root = json.createObjectNode();
        root.put("object", "list");
        ObjectNode model = root.putArray("data").addObject();
        model.put("id", config.servedModelName());
        model.put("object", "model");
        model.put("created", createdEpochSeconds);
        model.put("owned_by", "lathe");
        model.put("max_model_len", contextLength);
        return root.toString();
    }

    private static void writeJson(Response response, Callback callback, int status, String body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        Content.Sink.write(response, true, body, callback);
    }

    /**
     * Graceful stop: refuses new generations (503) and stops accepting connections, lets in-flight
     * requests finish for the configured grace period, aborts the rest, then stops Jetty.
     */
    public void shutdown() {
        draining = true;
        ready = false;
        connector.shutdown();
        long deadline = System.nanoTime() + config.shutdownGrace().toNanos();
        waitForInFlight(deadline);
        if (metrics.inFlight().get() > 0) {
            LOG.info("aborting {} requests still running after the grace period", metrics.inFlight().get());
            live.forEach(RequestHandle::cancel);
            waitForInFlight(System.nanoTime() + 2_000_000_000L);
        }
        try {
            server.stop();
        } catch (Exception e) {
            LOG.warn("stopping the HTTP server: {}", e.toString());
        }
    }

    private void waitForInFlight(long deadlineNanos) {
        while (metrics.inFlight().get() > 0 && System.nanoTime() < deadlineNanos) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    @Override
    public void close() {
        shutdown();
    }
}
