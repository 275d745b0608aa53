package dev.lathe.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Turns an OpenAI request body into a {@link GenerationRequest}, or an {@link ApiException} that
 * names the offending field. Unknown fields are ignored (clients send many); fields Lathe cannot
 * honour are refused rather than silently dropped.
 */
public final class RequestParser {
    /** Most choices per request: each holds a sampler and, once it diverges, its own KV blocks. */
    public static final int MAX_N = 16;
    public static final int MAX_TOP_LOGPROBS = 20;
    public static final int MAX_STOP_STRINGS = 16;
    /** Completions default to 16 new tokens, as OpenAI's API does. */
    public static final int DEFAULT_COMPLETION_TOKENS = 16;

    private static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool", "developer");

    private final ObjectMapper json;
    private final Tokenizer tokenizer;
    private final int contextLength;
    private final String servedModelName;
    private final ChatTemplate chatTemplate;

    public RequestParser(ObjectMapper json, Tokenizer tokenizer, int contextLength, String servedModelName,
                         ChatTemplate chatTemplate) {
        this.json = json;
        this.tokenizer = tokenizer;
        this.contextLength = contextLength;
        this.servedModelName = servedModelName;
        this.chatTemplate = chatTemplate;
    }

    public GenerationRequest parse(byte[] body, boolean chat) {
        JsonNode root;
        try {
            root = json.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.badRequest("the body is not valid JSON: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw ApiException.badRequest("the body cannot be read: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw ApiException.badRequest("the body must be a JSON object");
        }
        checkModel(root.get("model"));
        refuseUnsupported(root);

        int[] prompt = chat ? chatPrompt(root) : completionPrompt(root);
        String promptField = chat ? "messages" : "prompt";
        if (prompt.length >= contextLength) {
            throw new ApiException(400, "invalid_request_error", promptField, "context_length_exceeded",
                    "the prompt has " + prompt.length + " tokens but the model's context length is " + contextLength);
        }
        int room = contextLength - prompt.length;
        String maxField = chat && present(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        Integer maxTokens = optInt(root, maxField, 1, Integer.MAX_VALUE);
        if (maxTokens != null && maxTokens > room) {
            throw new ApiException(400, "invalid_request_error", maxField, "context_length_exceeded",
                    "the context length is " + contextLength + " tokens; the prompt takes " + prompt.length
                            + " and " + maxField + " asks for " + maxTokens + " more (at most " + room + ")");
        }
        int maxNew = maxTokens != null ? maxTokens : chat ? room : Math.min(DEFAULT_COMPLETION_TOKENS, room);

        SamplingParams sampling = SamplingParams.defaults()
                .withTemperature(optFloat(root, "temperature", 0, 2, 1.0f))
                .withTopP(positive(root, "top_p", 1, 1.0f))
                .withTopK(topK(root))
                .withMinP(minP(root))
                .withRepetitionPenalty(positive(root, "repetition_penalty", 10, 1.0f))
                .withPresencePenalty(optFloat(root, "presence_penalty", -2, 2, 0f))
                .withFrequencyPenalty(optFloat(root, "frequency_penalty", -2, 2, 0f))
                .withSeed(seed(root))
                .withMaxNewTokens(maxNew)
                .withStopStrings(stopStrings(root));

        Integer n = optInt(root, "n", 1, MAX_N);
        boolean stream = optBool(root, "stream", false);
        boolean includeUsage = false;
        JsonNode streamOptions = root.get("stream_options");
        if (streamOptions != null && !streamOptions.isNull()) {
            if (!streamOptions.isObject()) {
                throw ApiException.badField("stream_options", "stream_options must be an object");
            }
            if (!stream) {
                throw ApiException.badField("stream_options", "stream_options is only allowed with stream: true");
            }
            includeUsage = optBool(streamOptions, "include_usage", false);
        }
        JsonNode user = root.get("user");
        if (user != null && !user.isNull() && !user.isTextual()) {
            throw ApiException.badField("user", "user must be a string");
        }
        boolean logprobs;
        int top;
        if (chat) {
            logprobs = optBool(root, "logprobs", false);
            Integer requested = optInt(root, "top_logprobs", 0, MAX_TOP_LOGPROBS);
            if (requested != null && !logprobs) {
                throw ApiException.badField("top_logprobs", "top_logprobs needs logprobs: true");
            }
            top = requested == null ? 0 : requested;
        } else {
            Integer requested = optInt(root, "logprobs", 0, MAX_TOP_LOGPROBS);
            logprobs = requested != null;
            top = requested == null ? 0 : requested;
        }
        return new GenerationRequest(chat, prompt, sampling, n == null ? 1 : n, logprobs, top, stream, includeUsage,
                optBool(root, "ignore_eos", false));
    }

    private void checkModel(JsonNode model) {
        if (model == null || model.isNull()) {
            return; // NOTE: like vLLM, a request without "model" goes to the one model served.
        }
        if (!model.isTextual()) {
            throw ApiException.badField("model", "model must be a string");
        }
        if (!model.asText().equals(servedModelName)) {
            throw new ApiException(404, "invalid_request_error", "model", "model_not_found",
                    "the model '" + model.asText() + "' does not exist; this server serves '" + servedModelName + "'");
        }
    }

    private static void refuseUnsupported(JsonNode root) {
        if (root.has("best_of") && !root.get("best_of").isNull() && root.get("best_of").asInt(2) != 1) {
            throw ApiException.badField("best_of", "best_of is not supported (use n)");
        }
        if (optBool(root, "echo", false)) {
            throw ApiException.badField("echo", "echo is not supported");
        }
        if (present(root, "suffix")) {
            throw ApiException.badField("suffix", "suffix is not supported");
        }
        JsonNode bias = root.get("logit_bias");
        if (bias != null && !bias.isNull() && !bias.isEmpty()) {
            throw ApiException.badField("logit_bias", "logit_bias is not supported");
        }
        JsonNode tools = root.get("tools");
        if (tools != null && !tools.isNull() && !tools.isEmpty()) {
            throw ApiException.badField("tools", "tools are not supported");
        }
        JsonNode format = root.get("response_format");
        if (format != null && !format.isNull() && !"text".equals(format.path("type").asText("text"))) {
            throw ApiException.badField("response_format", "only response_format {\"type\": \"text\"} is supported");
        }
    }

    private int[] completionPrompt(JsonNode root) {
        JsonNode prompt = root.get("prompt");
        if (prompt == null || prompt.isNull()) {
            throw ApiException.badField("prompt", "prompt is required");
        }
        if (prompt.isTextual()) {
            return tokenizer.encode(prompt.asText(), true, false);
        }
        if (!prompt.isArray()) {
            throw ApiException.badField("prompt", "prompt must be a string, an array of one string, or an array of token ids");
        }
        if (prompt.size() == 1 && prompt.get(0).isTextual()) {
            return tokenizer.encode(prompt.get(0).asText(), true, false);
        }
        if (prompt.isEmpty() || !prompt.get(0).isIntegralNumber()) {
            throw ApiException.badField("prompt", "prompt must be a string, an array of one string, or a non-empty array "
                    + "of token ids (several prompts in one request are not supported)");
        }
        if (prompt.size() >= contextLength) {
            throw new ApiException(400, "invalid_request_error", "prompt", "context_length_exceeded",
                    "the prompt has " + prompt.size() + " tokens but the model's context length is " + contextLength);
        }
        int[] ids = new int[prompt.size()];
        int vocab = tokenizer.vocabSize();
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = prompt.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0 || id.asInt() >= vocab) {
                throw ApiException.badField("prompt", "prompt[" + i + "] = " + id + " is not a token id in [0, " + vocab + ")");
            }
            ids[i] = id.asInt();
        }
        return ids;
    }

    private int[] chatPrompt(JsonNode root) {
        JsonNode messages = root.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.badField("messages", "messages must be a non-empty array");
        }
        List<Map<String, Object>> rendered = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode message = messages.get(i);
            String where = "messages[" + i + "]";
            if (!message.isObject()) {
                throw ApiException.badField(where, where + " must be an object");
            }
            JsonNode role = message.get("role");
            if (role == null || !role.isTextual() || !ROLES.contains(role.asText())) {
                throw ApiException.badField(where + ".role", where + ".role must be one of " + ROLES);
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", role.asText());
            m.put("content", messageText(message.get("content"), where + ".content"));
            rendered.add(m);
        }
        String prompt = chatTemplate.render(rendered);
        return tokenizer.encode(prompt, !chatTemplate.rendersBos(prompt), true);
    }

    private static String messageText(JsonNode content, String where) {
        if (content == null || content.isNull()) {
            return "";
        }
        if (content.isTextual()) {
            return content.asText();
        }
        if (!content.isArray()) {
            throw ApiException.badField(where, where + " must be a string or an array of text parts");
        }
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < content.size(); i++) {
            JsonNode part = content.get(i);
            if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                throw ApiException.badField(where + "[" + i + "]", "only {\"type\": \"text\", \"text\": ...} parts are supported");
            }
            text.append(part.get("text").asText());
        }
        return text.toString();
    }

    private static int topK(JsonNode root) {
        Integer k = optInt(root, "top_k", -1, Integer.MAX_VALUE);
        return k == null || k <= 0 ? 0 : k; // NOTE: vLLM's -1 and llama.cpp's 0 both mean "off"
    }

    private static long seed(JsonNode root) {
        JsonNode seed = root.get("seed");
        if (seed == null || seed.isNull()) {
            return ThreadLocalRandom.current().nextLong();
        }
        if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
            throw ApiException.badField("seed", "seed must be a 64-bit integer, got " + seed);
        }
        return seed.asLong();
    }

    private static List<String> stopStrings(JsonNode root) {
        JsonNode stop = root.get("stop");
        if (stop == null || stop.isNull()) {
            return List.of();
        }
        if (stop.isTextual()) {
            if (stop.asText().isEmpty()) {
                throw ApiException.badField("stop", "stop must not be empty");
            }
            return List.of(stop.asText());
        }
        if (!stop.isArray() || stop.size() > MAX_STOP_STRINGS) {
            throw ApiException.badField("stop", "stop must be a string or an array of at most " + MAX_STOP_STRINGS + " strings");
        }
        List<String> strings = new ArrayList<>();
        for (int i = 0; i < stop.size(); i++) {
            JsonNode s = stop.get(i);
            if (!s.isTextual() || s.asText().isEmpty()) {
                throw ApiException.badField("stop", "stop[" + i + "] must be a non-empty string");
            }
            strings.add(s.asText());
        }
        return strings;
    }

    private static boolean present(JsonNode root, String field) {
        return root.has(field) && !root.get(field).isNull();
    }

    private static Integer optInt(JsonNode root, String field, int min, int max) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isIntegralNumber()) {
            throw ApiException.badField(field, field + " must be an integer, got " + v.getNodeType().toString().toLowerCase());
        }
        if (!v.canConvertToLong() || v.asLong() < min || v.asLong() > max) {
            throw ApiException.badField(field, field + " must be in [" + min + ", " + max + "], got " + v);
        }
        return v.asInt();
    }

    private static float optFloat(JsonNode root, String field, float min, float max, float fallback) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw ApiException.badField(field, field + " must be a number, got " + v.getNodeType().toString().toLowerCase());
        }
        double d = v.asDouble();
        if (!(d >= min && d <= max)) {
            throw ApiException.badField(field, field + " must be in [" + min + ", " + max + "], got " + v);
        }
        return (float) d;
    }

    /** A number in (0, max]: zero excluded. */
    private static float positive(JsonNode root, String field, float max, float fallback) {
        float value = optFloat(root, field, 0, max, fallback);
        if (value == 0) {
            throw ApiException.badField(field, field + " must be in (0, " + max + "], got 0");
        }
        return value;
    }

    private static float minP(JsonNode root) {
        float value = optFloat(root, "min_p", 0, 1, 0f);
        if (value == 1) {
            throw ApiException.badField("min_p", "min_p must be in [0, 1), got 1");
        }
        return value;
    }

    private static boolean optBool(JsonNode root, String field, boolean fallback) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isBoolean()) {
            throw ApiException.badField(field, field + " must be a boolean, got " + v.getNodeType().toString().toLowerCase());
        }
        return v.asBoolean();
    }
}
