package dev.lathe.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Queue overflow gives 429 with Retry-After; a client that disconnects mid-stream aborts its request and frees its blocks. */
class ServerQueueTest {
    private static final String LONG_STREAM = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 480, \"ignore_eos\": true, \"stream\": true}";

    @Test
    void overflowGets429() throws Exception {
        try (StoriesServer s = new StoriesServer(1, 8L << 20, ServerConfig.loopback(StoriesServer.MODEL).withMaxQueuedRequests(0)
                .withShutdownGrace(Duration.ofSeconds(1)))) {
            HttpRequest first = HttpRequest.newBuilder(s.uri("/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(LONG_STREAM)).build();
            HttpResponse<InputStream> running = s.http.send(first, HttpResponse.BodyHandlers.ofInputStream());
            try (BufferedReader lines = new BufferedReader(new InputStreamReader(running.body(), StandardCharsets.UTF_8))) {
                assertTrue(lines.readLine().startsWith("data: "), "the first request is streaming");
                HttpResponse<String> rejected = s.post("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 2}");
                assertEquals(429, rejected.statusCode(), rejected.body());
                assertEquals("1", rejected.headers().firstValue("Retry-After").orElse(null));
                JsonNode error = StoriesServer.JSON.readTree(rejected.body()).get("error");
                assertEquals("queue_full", error.get("code").asText());
                String line;
                String last = null;
                while ((line = lines.readLine()) != null) {
                    if (!line.isEmpty()) {
                        last = line;
                    }
                }
                assertEquals("data: [DONE]", last, "the admitted request still completes");
            }
            // NOTE: the server frees the slot after the response's last bytes are written, so a
            // client can read [DONE] a moment before it is free: wait for it (bounded) first.
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (s.server.metrics().inFlight().get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(200, s.post("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 2}").statusCode(), "room again");
            assertTrue(s.server.metrics().scrape().contains("status=\"429\""));
        }
    }

    @Test
    void disconnectAbortsAndFreesBlocks() throws Exception {
        try (StoriesServer s = StoriesServer.start()) {
            try (Socket socket = new Socket("127.0.0.1", s.server.port())) {
                byte[] body = LONG_STREAM.getBytes(StandardCharsets.UTF_8);
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                        + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
                String line;
                while ((line = in.readLine()) != null && !line.contains("data: ")) {
                    // headers and chunk sizes
                }
                assertTrue(line != null, "the stream started");
                assertTrue(s.engine.usage().used() > 0, "the request holds blocks while it runs");
            }
            long deadline = System.nanoTime() + 10_000_000_000L;
            while ((s.engine.usage().used() > 0 || s.server.metrics().inFlight().get() > 0) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(0, s.engine.usage().used(), "the aborted request's blocks are free");
            assertEquals(0, s.server.metrics().inFlight().get());
            assertTrue(s.server.metrics().scrape().contains("lathe_client_disconnects_total 1.0"), s.server.metrics().scrape());
        }
    }
}
