package dev.lathe.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.sample.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every endpoint over real HTTP on loopback, streaming and not, against stories260K. */
class ServerApiTest {
    private static StoriesServer s;

    @BeforeAll
    static void start() throws Exception {
        s = StoriesServer.start();
    }

    @AfterAll
    static void stop() {
        if (s != null) {
            s.close();
        }
    }

    private static JsonNode ok(HttpResponse<String> response) throws Exception {
        assertEquals(200, response.statusCode(), response.body());
        return StoriesServer.JSON.readTree(response.body());
    }

    @Test
    void modelsHealthAndMetrics() throws Exception {
        JsonNode models = ok(s.get("/v1/models"));
        assertEquals("list", models.get("object").asText());
        assertEquals(StoriesServer.MODEL, models.get("data").get(0).get("id").asText());
        assertEquals("model", models.get("data").get(0).get("object").asText());

        assertEquals("ok", ok(s.get("/health")).get("status").asText());

        s.post("/v1/completions", "{\"prompt\": \"Once\", \"max_tokens\": 3, \"temperature\": 0}");
        HttpResponse<String> metrics = s.get("/metrics");
        assertEquals(200, metrics.statusCode());
        assertTrue(metrics.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        for (String name : List.of("lathe_requests_total{endpoint=\"/v1/completions\",status=\"200\"}", "lathe_kv_blocks_used",
                "lathe_kv_blocks_free", "lathe_sequences_running", "lathe_sequences_waiting", "lathe_requests_in_flight",
                "lathe_prefix_cache_hit_rate", "lathe_time_to_first_token_seconds_bucket", "lathe_inter_token_latency_seconds_bucket",
                "lathe_generated_tokens_total", "lathe_generation_tokens_per_second")) {
            assertTrue(metrics.body().contains(name), "metrics lack " + name + ":\n" + metrics.body());
        }
    }

    @Test
    void greedyCompletionEqualsTheGenerator() throws Exception {
        String prompt = "Once upon a time, there was a little boy";
        GenerationResult expected = s.generator.generate(prompt, SamplingParams.greedy().withMaxNewTokens(40), null);
        JsonNode body = ok(s.post("/v1/completions", "{\"model\": \"stories260K\", \"prompt\": \"" + prompt
                + "\", \"max_tokens\": 40, \"temperature\": 0}"));
        assertEquals("text_completion", body.get("object").asText());
        assertTrue(body.get("id").asText().startsWith("cmpl-"));
        JsonNode choice = body.get("choices").get(0);
        assertEquals(expected.text(), choice.get("text").asText());
        assertEquals(expected.finishReason(), choice.get("finish_reason").asText());
        JsonNode usage = body.get("usage");
        assertEquals(expected.promptTokens().length, usage.get("prompt_tokens").asInt());
        assertEquals(expected.tokens().length, usage.get("completion_tokens").asInt());
        assertEquals(usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt(), usage.get("total_tokens").asInt());
    }

    @Test
    void streamedCompletionMatchesTheWholeOne() throws Exception {
        String request = "{\"prompt\": \"The cat sat on the mat and\", \"max_tokens\": 30, \"temperature\": 0";
        JsonNode whole = ok(s.post("/v1/completions", request + "}"));
        HttpResponse<String> streamed = s.post("/v1/completions", request
                + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
        assertEquals(200, streamed.statusCode());
        assertTrue(streamed.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<JsonNode> chunks = StoriesServer.events(streamed.body());
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (JsonNode chunk : chunks.subList(0, chunks.size() - 1)) {
            assertEquals("text_completion", chunk.get("object").asText());
            assertTrue(chunk.has("usage") && chunk.get("usage").isNull());
            JsonNode choice = chunk.get("choices").get(0);
            text.append(choice.get("text").asText());
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        assertTrue(chunks.size() > 5, "tokens go out one chunk each");
        assertEquals(whole.get("choices").get(0).get("text").asText(), text.toString());
        assertEquals(whole.get("choices").get(0).get("finish_reason").asText(), finish);
        JsonNode last = chunks.getLast();
        assertEquals(0, last.get("choices").size());
        assertEquals(whole.get("usage"), last.get("usage"));
    }

    @Test
    void chatUsesTheDefaultTemplateAndStreams() throws Exception {
        String messages = "\"messages\": [{\"role\": \"system\", \"content\": \"Tell a story.\"}, "
                + "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"A cat\"}]}]";
        JsonNode whole = ok(s.post("/v1/chat/completions", "{" + messages + ", \"max_tokens\": 20, \"temperature\": 0}"));
        assertEquals("chat.completion", whole.get("object").asText());
        JsonNode message = whole.get("choices").get(0).get("message");
        assertEquals("assistant", message.get("role").asText());
        String rendered = "system: Tell a story.\nuser: A cat\nassistant:";
        GenerationResult expected = s.generator.generate(rendered, SamplingParams.greedy().withMaxNewTokens(20), null);
        assertEquals(expected.text(), message.get("content").asText());
        assertEquals(expected.promptTokens().length, whole.get("usage").get("prompt_tokens").asInt());

        List<JsonNode> chunks = StoriesServer.events(s.post("/v1/chat/completions", "{" + messages
                + ", \"max_tokens\": 20, \"temperature\": 0, \"stream\": true}").body());
        assertEquals("assistant", chunks.getFirst().get("choices").get(0).get("delta").get("role").asText());
        StringBuilder text = new StringBuilder();
        for (JsonNode chunk : chunks) {
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            assertFalse(chunk.has("usage"));
            text.append(chunk.get("choices").get(0).get("delta").path("content").asText(""));
        }
        assertEquals(message.get("content").asText(), text.toString());
        assertEquals(whole.get("choices").get(0).get("finish_reason").asText(),
                chunks.getLast().get("choices").get(0).get("finish_reason").asText());
    }

    @Test
    void logprobsInBothShapes() throws Exception {
        JsonNode completion = ok(s.post("/v1/completions",
                "{\"prompt\": \"Tim\", \"max_tokens\": 5, \"temperature\": 0, \"logprobs\": 3, \"ignore_eos\": true}"));
        JsonNode lp = completion.get("choices").get(0).get("logprobs");
        assertEquals(5, lp.get("tokens").size());
        assertEquals(5, lp.get("token_logprobs").size());
        assertEquals(3, lp.get("top_logprobs").get(0).size());
        assertEquals(0, lp.get("text_offset").get(0).asInt());
        assertTrue(lp.get("token_logprobs").get(0).asDouble() <= 0);

        JsonNode chat = ok(s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                + "\"max_tokens\": 4, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 2, \"ignore_eos\": true}"));
        JsonNode content = chat.get("choices").get(0).get("logprobs").get("content");
        assertEquals(4, content.size());
        assertEquals(2, content.get(0).get("top_logprobs").size());
        assertTrue(content.get(0).get("bytes").isArray());
        assertEquals(content.get(0).get("logprob").asDouble(), content.get(0).get("top_logprobs").get(0).get("logprob").asDouble(),
                1e-6, "greedy picks the most likely token");
    }

    @Test
    void severalChoicesStopStringsAndSeeds() throws Exception {
        String request = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 25, \"n\": 3, \"seed\": 7, \"temperature\": 0.9, "
                + "\"top_k\": 40, \"top_p\": 0.95, \"min_p\": 0.01, \"repetition_penalty\": 1.1, \"presence_penalty\": 0.1, "
                + "\"frequency_penalty\": 0.1, \"user\": \"tester\"}";
        JsonNode first = ok(s.post("/v1/completions", request));
        JsonNode again = ok(s.post("/v1/completions", request));
        assertEquals(3, first.get("choices").size());
        for (int i = 0; i < 3; i++) {
            assertEquals(i, first.get("choices").get(i).get("index").asInt());
            assertEquals(first.get("choices").get(i).get("text"), again.get("choices").get(i).get("text"), "same seed, same text");
        }
        int completionTokens = first.get("usage").get("completion_tokens").asInt();
        assertTrue(completionTokens > 3 && completionTokens <= 75, "usage counts every choice: " + completionTokens);

        String plain = ok(s.post("/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 40, \"temperature\": 0}"))
                .get("choices").get(0).get("text").asText();
        String stop = plain.substring(10, 13);
        JsonNode stopped = ok(s.post("/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 40, \"temperature\": 0, "
                + "\"stop\": [" + StoriesServer.JSON.writeValueAsString(stop) + "]}"));
        JsonNode choice = stopped.get("choices").get(0);
        assertEquals("stop", choice.get("finish_reason").asText());
        assertEquals(plain.substring(0, plain.indexOf(stop)), choice.get("text").asText());
    }

    @Test
    void lengthFinishReason() throws Exception {
        JsonNode body = ok(s.post("/v1/completions", "{\"prompt\": \"Once\", \"max_tokens\": 2, \"ignore_eos\": true}"));
        assertEquals("length", body.get("choices").get(0).get("finish_reason").asText());
        assertEquals(2, body.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void streamingSeveralChoicesInterleaves() throws Exception {
        String request = "{\"messages\": [{\"role\": \"user\", \"content\": \"A dog\"}], \"max_tokens\": 12, \"n\": 2, "
                + "\"seed\": 3, \"ignore_eos\": true";
        JsonNode whole = ok(s.post("/v1/chat/completions", request + "}"));
        List<JsonNode> chunks = StoriesServer.events(s.post("/v1/chat/completions", request
                + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}").body());
        StringBuilder[] text = {new StringBuilder(), new StringBuilder()};
        String[] finish = new String[2];
        for (JsonNode chunk : chunks.subList(0, chunks.size() - 1)) {
            JsonNode choice = chunk.get("choices").get(0);
            int index = choice.get("index").asInt();
            text[index].append(choice.get("delta").path("content").asText(""));
            if (!choice.get("finish_reason").isNull()) {
                finish[index] = choice.get("finish_reason").asText();
            }
        }
        for (int i = 0; i < 2; i++) {
            assertEquals(whole.get("choices").get(i).get("message").get("content").asText(), text[i].toString(), "choice " + i);
            assertEquals("length", finish[i]);
        }
        assertEquals(24, chunks.getLast().get("usage").get("completion_tokens").asInt());
    }
}
