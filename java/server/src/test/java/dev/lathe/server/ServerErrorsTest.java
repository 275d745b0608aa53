package dev.lathe.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each bad input gets its HTTP status and an OpenAI error object naming the field; --api-key gives 401 without the key. */
class ServerErrorsTest {
    private static final String KEY = "sk-test-key";
    private static final String[] AUTH = {"Authorization", "Bearer " + KEY};
    private static StoriesServer s;

    @BeforeAll
    static void start() throws Exception {
        s = new StoriesServer(4, 8L << 20, ServerConfig.loopback(StoriesServer.MODEL).withApiKey(KEY)
                .withShutdownGrace(Duration.ofSeconds(1)));
    }

    @AfterAll
    static void stop() {
        if (s != null) {
            s.close();
        }
    }

    private static JsonNode error(HttpResponse<String> response, int status, String param) throws Exception {
        assertEquals(status, response.statusCode(), response.body());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode error = StoriesServer.JSON.readTree(response.body()).get("error");
        assertTrue(error.get("message").isTextual() && !error.get("message").asText().isEmpty(), response.body());
        assertTrue(error.get("type").isTextual(), response.body());
        if (param != null) {
            assertEquals(param, error.get("param").asText(), response.body());
        }
        return error;
    }

    private static HttpResponse<String> completion(String body) throws Exception {
        return s.post("/v1/completions", body, AUTH);
    }

    @Test
    void authorization() throws Exception {
        JsonNode missing = error(s.post("/v1/completions", "{\"prompt\": \"Hi\"}"), 401, null);
        assertEquals("invalid_api_key", missing.get("code").asText());
        error(s.post("/v1/chat/completions", "{\"messages\": []}", "Authorization", "Bearer wrong"), 401, null);
        error(s.get("/v1/models"), 401, null);
        assertEquals(200, s.get("/v1/models", AUTH).statusCode());
        assertEquals(200, completion("{\"prompt\": \"Hi\", \"max_tokens\": 2}").statusCode());
        assertEquals(200, s.get("/health").statusCode(), "health and metrics stay open to probes");
        assertEquals(200, s.get("/metrics").statusCode());
    }

    @Test
    void malformedBodies() throws Exception {
        error(completion("{\"prompt\": \"Hi\""), 400, null);
        error(completion("[1, 2]"), 400, null);
        error(completion(""), 400, null);
        error(completion("{\"max_tokens\": 3}"), 400, "prompt");
        error(s.post("/v1/chat/completions", "{\"messages\": []}", AUTH), 400, "messages");
        error(s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", AUTH), 400, "messages[0].role");
        error(s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", AUTH), 400, "messages[0].content");
    }

    @Test
    void wrongTypesAndRanges() throws Exception {
        error(completion("{\"prompt\": \"Hi\", \"max_tokens\": \"ten\"}"), 400, "max_tokens");
        error(completion("{\"prompt\": \"Hi\", \"max_tokens\": 0}"), 400, "max_tokens");
        error(completion("{\"prompt\": \"Hi\", \"max_tokens\": 99999999999}"), 400, "max_tokens");
        error(completion("{\"prompt\": \"Hi\", \"temperature\": -1}"), 400, "temperature");
        error(completion("{\"prompt\": \"Hi\", \"temperature\": \"hot\"}"), 400, "temperature");
        error(completion("{\"prompt\": \"Hi\", \"top_p\": 0}"), 400, "top_p");
        error(completion("{\"prompt\": \"Hi\", \"n\": 1000}"), 400, "n");
        error(completion("{\"prompt\": \"Hi\", \"stream\": \"yes\"}"), 400, "stream");
        error(completion("{\"prompt\": \"Hi\", \"stream_options\": {\"include_usage\": true}}"), 400, "stream_options");
        error(completion("{\"prompt\": \"Hi\", \"stop\": [\"\"]}"), 400, "stop");
        error(completion("{\"prompt\": \"Hi\", \"seed\": 1.5}"), 400, "seed");
        error(completion("{\"prompt\": \"Hi\", \"logprobs\": 99}"), 400, "logprobs");
        error(completion("{\"prompt\": \"Hi\", \"presence_penalty\": 3}"), 400, "presence_penalty");
        error(completion("{\"prompt\": \"Hi\", \"echo\": true}"), 400, "echo");
        error(completion("{\"prompt\": [1, 2, 100000]}"), 400, "prompt");
        error(s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}", AUTH),
                400, "top_logprobs");
    }

    @Test
    void unknownModelAndEndpoint() throws Exception {
        JsonNode model = error(completion("{\"model\": \"gpt-4\", \"prompt\": \"Hi\"}"), 404, "model");
        assertEquals("model_not_found", model.get("code").asText());
        error(s.post("/v1/embeddings", "{}", AUTH), 404, null);
        error(s.get("/v1/completions", AUTH), 405, null);
    }

    @Test
    void tooLongPromptsAndBodies() throws Exception {
        String longPrompt = "Once upon a time there was a cat. ".repeat(200);
        JsonNode tooLong = error(completion("{\"prompt\": \"" + longPrompt + "\"}"), 400, "prompt");
        assertEquals("context_length_exceeded", tooLong.get("code").asText());
        error(s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + longPrompt + "\"}]}", AUTH),
                400, "messages");
        error(completion("{\"prompt\": \"Hi\", \"max_tokens\": 100000}"), 400, "max_tokens");
        String huge = "{\"prompt\": \"" + "a".repeat(ServerConfig.DEFAULT_MAX_BODY_BYTES) + "\"}";
        error(s.postExpectingContinue("/v1/completions", huge, AUTH), 413, null);
        assertEquals(200, completion("{\"prompt\": \"Hi\", \"max_tokens\": 2}").statusCode(), "the server is still fine");
    }
}
