package dev.lathe.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bounded load test: many concurrent streaming clients send a fixed number of requests to
 * stories260K; every request completes with all its tokens or is rejected with 429, none is lost,
 * and the engine ends holding no KV block. Prints requests/s, tokens/s, and client-side time to
 * first token and inter-token latency percentiles.
 *
 * <p>Sized for CI by default (64 clients, 128 requests of 16 tokens); a longer run:
 * {@code ./lathe mvn -o -pl java/server -am test -Dtest=ServerLoadTest -Dsurefire.failIfNoSpecifiedTests=false
 * -Dlathe.load.requests=2000 -Dlathe.load.clients=64 -Dlathe.load.maxTokens=64}.
 */
class ServerLoadTest {
    private static final int CLIENTS = Integer.getInteger("lathe.load.clients", 64);
    private static final int REQUESTS = Integer.getInteger("lathe.load.requests", 128);
    private static final int MAX_TOKENS = Integer.getInteger("lathe.load.maxTokens", 16);
    private static final int MAX_RUNNING = Integer.getInteger("lathe.load.maxBatch", 32);
    private static final int MAX_QUEUE = Integer.getInteger("lathe.load.maxQueue", 16);
    private static final String[] PROMPTS = {"Once upon a time", "The cat sat on the mat and", "Lily and Tom went to the park.",
        "Tim", "The sun was hot", "One day, a little girl named Sue found a shiny red ball", "There was a big dog"};

    private record Outcome(boolean completed, int tokens, long firstTokenNanos, List<Long> interTokenNanos) {
    }

    @Test
    void concurrentStreamingClientsAllCompleteOrGet429() throws Exception {
        try (StoriesServer s = new StoriesServer(MAX_RUNNING, 32L << 20, ServerConfig.loopback(StoriesServer.MODEL)
                .withMaxQueuedRequests(MAX_QUEUE).withShutdownGrace(Duration.ofSeconds(1)))) {
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                    .executor(Executors.newVirtualThreadPerTaskExecutor()).build();
            warmUp(s, http);
            AtomicInteger next = new AtomicInteger();
            AtomicInteger rejected = new AtomicInteger();
            AtomicLong unexpected = new AtomicLong();
            List<Outcome> outcomes = Collections.synchronizedList(new ArrayList<>());
            long start = System.nanoTime();
            try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<?>> running = new ArrayList<>();
                for (int c = 0; c < CLIENTS; c++) {
                    running.add(clients.submit(() -> {
                        for (int i = next.getAndIncrement(); i < REQUESTS; i = next.getAndIncrement()) {
                            Outcome o = send(s, http, PROMPTS[i % PROMPTS.length] + " " + i);
                            if (o == null) {
                                rejected.incrementAndGet();
                            } else if (o.completed() && o.tokens() == MAX_TOKENS) {
                                outcomes.add(o);
                            } else {
                                unexpected.incrementAndGet();
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : running) {
                    f.get();
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            assertEquals(0, unexpected.get(), "every admitted request streams all its tokens and [DONE]");
            assertEquals(REQUESTS, outcomes.size() + rejected.get(), "none lost");
            assertTrue(outcomes.size() >= MAX_RUNNING, "most requests are served: " + outcomes.size());

            long deadline = System.nanoTime() + 5_000_000_000L;
            while (s.server.metrics().inFlight().get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(0, s.server.metrics().inFlight().get());
            assertEquals(0, s.engine.usage().used(), "the engine ends holding no KV block");
            assertEquals(0, s.engine.runningSequences() + s.engine.waitingSequences());

            List<Long> ttft = new ArrayList<>();
            List<Long> itl = new ArrayList<>();
            long tokens = 0;
            for (Outcome o : outcomes) {
                ttft.add(o.firstTokenNanos());
                itl.addAll(o.interTokenNanos());
                tokens += o.tokens();
            }
            System.out.printf("load: %d clients, %d requests x %d tokens (max-batch %d, max-queue %d): %d completed, %d got 429, "
                            + "%.1f s, %.1f requests/s, %.0f tokens/s; TTFT p50 %.1f ms p99 %.1f ms; inter-token p50 %.2f ms p99 %.2f ms%n",
                    CLIENTS, REQUESTS, MAX_TOKENS, MAX_RUNNING, MAX_QUEUE, outcomes.size(), rejected.get(), seconds,
                    outcomes.size() / seconds, tokens / seconds, percentile(ttft, 0.50), percentile(ttft, 0.99),
                    percentile(itl, 0.50), percentile(itl, 0.99));
        }
    }

    private static void warmUp(StoriesServer s, HttpClient http) throws Exception {
        for (int i = 0; i < 20; i++) {
            send(s, http, "warm up " + i);
        }
    }

    /** One streaming request; null when it was rejected with 429. */
    private static Outcome send(StoriesServer s, HttpClient http, String prompt) throws Exception {
        String body = "{\"prompt\": " + StoriesServer.JSON.writeValueAsString(prompt) + ", \"max_tokens\": " + MAX_TOKENS
                + ", \"temperature\": 0.8, \"seed\": 1, \"ignore_eos\": true, \"stream\": true, "
                + "\"stream_options\": {\"include_usage\": true}}";
        HttpRequest request = HttpRequest.newBuilder(s.uri("/v1/completions")).timeout(Duration.ofSeconds(120))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long sent = System.nanoTime();
        HttpResponse<java.util.stream.Stream<String>> response = http.send(request, HttpResponse.BodyHandlers.ofLines());
        if (response.statusCode() == 429) {
            response.body().close();
            return null;
        }
        assertEquals(200, response.statusCode());
        long firstToken = -1;
        long last = 0;
        List<Long> gaps = new ArrayList<>();
        int tokens = -1;
        boolean done = false;
        Iterator<String> lines = response.body().iterator();
        while (lines.hasNext()) {
            String line = lines.next();
            if (!line.startsWith("data: ")) {
                continue;
            }
            if (line.equals("data: [DONE]")) {
                done = true;
                continue;
            }
            long now = System.nanoTime();
            JsonNode chunk = StoriesServer.JSON.readTree(line.substring(6));
            if (chunk.get("usage") != null && !chunk.get("usage").isNull()) {
                tokens = chunk.get("usage").get("completion_tokens").asInt();
            }
            JsonNode choices = chunk.get("choices");
            if (!choices.isEmpty() && !choices.get(0).get("text").asText().isEmpty()) {
                if (firstToken < 0) {
                    firstToken = now - sent;
                } else {
                    gaps.add(now - last);
                }
                last = now;
            }
        }
        return new Outcome(done, tokens, firstToken, gaps);
    }

    private static double percentile(List<Long> nanos, double q) {
        if (nanos.isEmpty()) {
            return Double.NaN;
        }
        List<Long> sorted = new ArrayList<>(nanos);
        Collections.sort(sorted);
        return sorted.get((int) Math.min(sorted.size() - 1, Math.round(q * (sorted.size() - 1)))) / 1e6;
    }
}
