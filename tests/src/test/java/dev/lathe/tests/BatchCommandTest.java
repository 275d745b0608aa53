package dev.lathe.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lathe batch}: results, malformed lines, and restart after a crash. */
class BatchCommandTest {
    private static final String DIR = "models/stories260K/";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> INPUT = List.of(
            "{\"id\": 1, \"prompt\": \"Once upon a time\", \"max_tokens\": 24, \"temperature\": 0}",
            "{\"id\": \"two\", \"prompt\": \"The cat\", \"max_tokens\": 12, \"n\": 2, \"seed\": 5}",
            "{\"id\": 3, \"prompt\": \"Tom\", \"stop\": [\".\"], \"temperature\": 0, \"max_tokens\": 40}",
            "this is not json",
            "{\"id\": 4, \"prompt\": \"Lily went\", \"top_p\": 1.5}",
            "{\"prompt\": \"no id\"}",
            "{\"id\": 5, \"prompt_token_ids\": [1, 346, 306], \"max_tokens\": 8, \"temperature\": 0, \"logprobs\": 2}",
            "{\"id\": 6, \"prompt\": \"Sue\", \"max_tokens\": 10, \"temprature\": 0}",
            "{\"id\": 7, \"prompt\": \"Ben and\", \"max_tokens\": 16, \"temperature\": 0}");

    private static CliTest.Run batch(Path in, Path out, String... extra) {
        List<String> args = new ArrayList<>(List.of("batch", "-m", SharedData.require(DIR + "stories260K.bin").toString(),
                "-z", SharedData.require(DIR + "tok512.bin").toString(), "--input", in.toString(), "--output", out.toString(),
                "--kv-memory", "2MB", "--max-batch", "3", "--threads", "2", "--no-progress"));
        args.addAll(List.of(extra));
        return CliTest.lathe(args.toArray(String[]::new));
    }

    private static List<JsonNode> results(Path out) throws IOException {
        List<JsonNode> nodes = new ArrayList<>();
        for (String line : Files.readAllLines(out, StandardCharsets.UTF_8)) {
            nodes.add(JSON.readTree(line));
        }
        return nodes;
    }

    private static List<String> ids(List<JsonNode> nodes) {
        return nodes.stream().map(n -> n.get("id").toString()).sorted().toList();
    }

    @Test
    void writesOneResultPerGoodLineAndReportsMalformedLinesByNumber(@TempDir Path tmp) throws IOException {
        Path in = tmp.resolve("prompts.jsonl");
        Path out = tmp.resolve("results.jsonl");
        Files.write(in, INPUT);
        CliTest.Run run = batch(in, out);
        assertEquals(0, run.exitCode(), run.err());
        for (String expected : List.of("line 4: not JSON", "line 5: invalid sampling parameter topP = 1.5",
                "line 6: field \"id\" is missing", "line 8: unknown field \"temprature\"")) {
            assertTrue(run.err().contains(expected), expected + " in:\n" + run.err());
        }
        List<JsonNode> results = results(out);
        assertEquals(List.of("\"two\"", "1", "3", "5", "7"), ids(results));
        for (JsonNode r : results) {
            for (String field : List.of("text", "token_ids", "finish_reason", "prompt_tokens", "completion_tokens", "timings")) {
                assertTrue(r.has(field), field + " missing in " + r);
            }
            if (r.get("id").asText().equals("two")) {
                assertEquals(2, r.get("choices").size());
                assertEquals(24, r.get("completion_tokens").asInt());
            }
            if (r.get("id").asInt() == 3) {
                assertEquals("stop", r.get("finish_reason").asText());
                assertFalse(r.get("text").asText().contains("."));
            }
            if (r.get("id").asInt() == 5) {
                assertEquals(3, r.get("prompt_tokens").asInt());
                assertEquals(r.get("token_ids").get(0).asInt(), r.get("logprobs").get(0).get("top").get(0).get("token").asInt());
            }
        }
    }

    @Test
    void aRerunSkipsFinishedIdsAndRedoesOnlyWhatACrashLost(@TempDir Path tmp) throws IOException {
        Path in = tmp.resolve("prompts.jsonl");
        Path out = tmp.resolve("results.jsonl");
        Files.write(in, INPUT);
        assertEquals(0, batch(in, out).exitCode());
        List<String> complete = Files.readAllLines(out, StandardCharsets.UTF_8);

        // A crash: two results written, the third cut off mid-line, the rest never started.
        String partial = complete.get(2).substring(0, complete.get(2).length() / 2);
        Files.writeString(out, complete.get(0) + "\n" + complete.get(1) + "\n" + partial, StandardCharsets.UTF_8);
        CliTest.Run rerun = batch(in, out);
        assertEquals(0, rerun.exitCode(), rerun.err());
        assertTrue(rerun.err().contains("dropped an unfinished last line"), rerun.err());
        assertTrue(rerun.err().contains("2 request(s) already in"), rerun.err());
        List<JsonNode> results = results(out);
        assertEquals(ids(results(tmp.resolve("results.jsonl"))), ids(results));
        assertEquals(List.of("\"two\"", "1", "3", "5", "7"), ids(results));
        // Greedy requests give the same result the second time.
        for (JsonNode r : results) {
            for (String line : complete) {
                JsonNode before = JSON.readTree(line);
                if (before.get("id").equals(r.get("id")) && !r.get("id").asText().equals("two")) {
                    assertEquals(before.get("token_ids"), r.get("token_ids"));
                }
            }
        }

        CliTest.Run nothingLeft = batch(in, out);
        assertEquals(0, nothingLeft.exitCode());
        assertTrue(nothingLeft.err().contains("5 request(s) already in"), nothingLeft.err());
        assertEquals(5, Files.readAllLines(out).size());
    }

    @Test
    void rejectPolicyRunsNothingWhenALineIsMalformed(@TempDir Path tmp) throws IOException {
        Path in = tmp.resolve("prompts.jsonl");
        Path out = tmp.resolve("results.jsonl");
        Files.write(in, INPUT);
        CliTest.Run run = batch(in, out, "--on-bad-line", "reject");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("4 malformed line(s); nothing was run"), run.err());
        assertFalse(Files.exists(out));
    }

    @Test
    void benchBatchPrintsAThroughputTableAndThePrefixCacheSpeedup() {
        CliTest.Run run = CliTest.lathe("bench", "-m", SharedData.require(DIR + "stories260K-q8_0.gguf").toString(),
                "--batch", "1,4", "--shared-prefix", "48", "--prompt-tokens", "8", "--gen-tokens", "4", "--repeat", "1",
                "--threads", "2");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().matches("(?s).*\\n\\s+1\\s+[0-9.]+ \\(min.*\\n\\s+4\\s+[0-9.]+ \\(min.*"), run.out());
        assertTrue(run.out().contains("(48 prompt tokens per request from the cache)"), run.out());
        assertTrue(run.out().contains("speedup"), run.out());
    }
}
