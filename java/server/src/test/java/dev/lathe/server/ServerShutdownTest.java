package dev.lathe.server;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Graceful shutdown: in-flight requests finish within the grace period, later ones are aborted, and nothing is left held. */
class ServerShutdownTest {

    private static List<String> readAll(BufferedReader lines) throws Exception {
        List<String> out = new ArrayList<>();
        try {
            String line;
            while ((line = lines.readLine()) != null) {
                if (!line.isEmpty()) {
                    out.add(line);
                }
            }
        } catch (java.io.IOException e) {
            out.add("closed: " + e);
        }
        return out;
    }

    @Test
    void inFlightRequestFinishesWithinTheGracePeriod() throws Exception {
        StoriesServer s = new StoriesServer(4, 8L << 20, ServerConfig.loopback(StoriesServer.MODEL).withShutdownGrace(Duration.ofSeconds(30)));
        try {
            HttpRequest request = HttpRequest.newBuilder(s.uri("/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(
                    "{\"prompt\": \"Once\", \"max_tokens\": 100, \"ignore_eos\": true, \"stream\": true}")).build();
            HttpResponse<InputStream> response = s.http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
            assertTrue(lines.readLine().startsWith("data: "));
            s.server.shutdown();
            List<String> rest = readAll(lines);
            assertEquals("data: [DONE]", rest.getLast());
            assertTrue(rest.get(rest.size() - 2).contains("\"finish_reason\":\"length\""), rest.get(rest.size() - 2));
            assertEquals(0, s.engine.usage().used());
        } finally {
            s.close();
        }
    }

    @Test
    void requestsStillRunningAfterTheGracePeriodAreAborted() throws Exception {
        StoriesServer s = new StoriesServer(1, 8L << 20, ServerConfig.loopback(StoriesServer.MODEL).withShutdownGrace(Duration.ofMillis(100)));
        try {
            HttpRequest request = HttpRequest.newBuilder(s.uri("/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(
                    "{\"prompt\": \"Once\", \"max_tokens\": 480, \"ignore_eos\": true, \"stream\": true}")).build();
            HttpResponse<InputStream> response = s.http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
            assertTrue(lines.readLine().startsWith("data: "));
            long start = System.nanoTime();
            s.server.shutdown();
            assertTrue(System.nanoTime() - start < 5_000_000_000L, "shutdown is bounded by the grace period");
            List<String> rest = readAll(lines);
            assertTrue(rest.stream().anyMatch(l -> l.contains("\"finish_reason\":\"abort\"")) || rest.getLast().startsWith("closed"),
                    "the stream ends early: " + rest.getLast());
            assertEquals(0, s.engine.usage().used());
            assertEquals(0, s.server.metrics().inFlight().get());
        } finally {
            s.close();
        }
    }
}
