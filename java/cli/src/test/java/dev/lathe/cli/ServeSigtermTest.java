package dev.lathe.cli;

import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lathe serve} in its own process: SIGTERM lets the in-flight stream finish, then the process exits. */
class ServeSigtermTest {
    @Test
    void sigtermDrainsAndExits() throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.bin");
        Path tokenizer = SharedData.require("models/stories260K/tok512.bin");
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        Path log = Files.createTempFile("lathe-serve", ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process process = new ProcessBuilder(List.of(java, "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Lathe.class.getName(), "serve", "-m", model.toString(),
                "-z", tokenizer.toString(), "--port", Integer.toString(port), "--threads", "1", "--shutdown-grace", "20"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            HttpClient http = HttpClient.newHttpClient();
            URI base = URI.create("http://127.0.0.1:" + port);
            long deadline = System.nanoTime() + 60_000_000_000L;
            boolean up = false;
            while (!up && System.nanoTime() < deadline && process.isAlive()) {
                try {
                    up = http.send(HttpRequest.newBuilder(base.resolve("/health")).build(), HttpResponse.BodyHandlers.ofString())
                            .statusCode() == 200;
                } catch (java.io.IOException notYet) {
                    Thread.sleep(100);
                }
            }
            assertTrue(up, "the server came up: " + Files.readString(log));
            HttpRequest stream = HttpRequest.newBuilder(base.resolve("/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(
                    "{\"prompt\": \"Once\", \"max_tokens\": 200, \"ignore_eos\": true, \"stream\": true}")).build();
            HttpResponse<InputStream> response = http.send(stream, HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
            assertTrue(lines.readLine().startsWith("data: "));

            process.destroy(); // SIGTERM
            String line;
            String last = null;
            while ((line = lines.readLine()) != null) {
                if (!line.isEmpty()) {
                    last = line;
                }
            }
            assertEquals("data: [DONE]", last, "the in-flight request finished");
            assertTrue(process.waitFor(30, TimeUnit.SECONDS), "the process exited");
            assertTrue(Files.readString(log).contains("shutting down"), Files.readString(log));
        } finally {
            process.destroyForcibly();
            Files.deleteIfExists(log);
        }
    }
}
