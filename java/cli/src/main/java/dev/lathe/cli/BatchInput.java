package dev.lathe.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeType;
import dev.lathe.core.engine.Request;
import dev.lathe.core.sample.SamplingParams;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One line of a {@code lathe batch} input file: {@code {"id": ..., "prompt": "..."}} (or
 * {@code "prompt_token_ids": [...]}) with optional sampling fields that override the command's
 * defaults. A line that is not such an object becomes an error naming the line and the field.
 */
final class BatchInput {
    /** A parsed line: the request, or why it was refused. */
    record Line(int number, JsonNode id, String key, Request request, String error) {
        boolean ok() {
            return error == null;
        }
    }

    static final Set<String> FIELDS = Set.of("id", "prompt", "prompt_token_ids", "max_tokens", "temperature", "top_k",
            "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop", "n",
            "priority", "logprobs", "ignore_eos");
    /** A line longer than this is refused before parsing: a prompt, not a data dump. */
    static final int MAX_LINE_CHARS = 4 << 20;
    /** The most prompt token ids a line may give (more than any supported context length). */
    static final int MAX_PROMPT_IDS = 1 << 20;

    private static final ObjectMapper JSON = new ObjectMapper();

    private BatchInput() {
    }

    /** The key under which restart bookkeeping knows an id: its JSON text (so 7 and "7" differ). */
    static String key(JsonNode id) {
        return id.toString();
    }

    static Line parse(int number, String text, SamplingParams defaults) {
        if (text.length() > MAX_LINE_CHARS) {
            return error(number, null, "line is " + text.length() + " characters; at most " + MAX_LINE_CHARS);
        }
        JsonNode node;
        try {
            node = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            return error(number, null, "not JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            return error(number, null, "expected a JSON object {\"id\": ..., \"prompt\": ...}");
        }
        JsonNode id = node.get("id");
        if (id == null || !(id.isTextual() || id.isIntegralNumber())) {
            return error(number, null, "field \"id\" is missing or not a string or integer");
        }
        try {
            for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
                String name = names.next();
                if (!FIELDS.contains(name)) {
                    throw new IllegalArgumentException("unknown field \"" + name + "\" (known: " + String.join(", ", FIELDS.stream().sorted().toList()) + ")");
                }
            }
            return new Line(number, id, key(id), request(node, id.asText(), defaults), null);
        } catch (IllegalArgumentException e) {
            return error(number, id, e.getMessage());
        }
    }

    private static Line error(int number, JsonNode id, String message) {
        return new Line(number, id, id == null ? null : key(id), null, "line " + number + ": " + message);
    }

    private static Request request(JsonNode node, String id, SamplingParams defaults) {
        JsonNode prompt = node.get("prompt");
        JsonNode ids = node.get("prompt_token_ids");
        if ((prompt == null) == (ids == null)) {
            throw new IllegalArgumentException("give exactly one of \"prompt\" (text) and \"prompt_token_ids\"");
        }
        String promptText = null;
        int[] promptTokens = null;
        if (prompt != null) {
            if (!prompt.isTextual()) {
                throw new IllegalArgumentException("field \"prompt\" must be a string, got " + type(prompt));
            }
            promptText = prompt.asText();
        } else {
            if (!ids.isArray() || ids.size() > MAX_PROMPT_IDS) {
                throw new IllegalArgumentException("field \"prompt_token_ids\" must be an array of at most " + MAX_PROMPT_IDS + " integers");
            }
            promptTokens = new int[ids.size()];
            for (int i = 0; i < ids.size(); i++) {
                promptTokens[i] = integer(ids.get(i), "prompt_token_ids[" + i + "]");
            }
        }
        SamplingParams p = defaults;
        if (node.has("max_tokens")) {
            p = p.withMaxNewTokens(integer(node.get("max_tokens"), "max_tokens"));
        }
        if (node.has("temperature")) {
            p = p.withTemperature(number(node.get("temperature"), "temperature"));
        }
        if (node.has("top_k")) {
            p = p.withTopK(integer(node.get("top_k"), "top_k"));
        }
        if (node.has("top_p")) {
            p = p.withTopP(number(node.get("top_p"), "top_p"));
        }
        if (node.has("min_p")) {
            p = p.withMinP(number(node.get("min_p"), "min_p"));
        }
        if (node.has("repetition_penalty")) {
            p = p.withRepetitionPenalty(number(node.get("repetition_penalty"), "repetition_penalty"));
        }
        if (node.has("presence_penalty")) {
            p = p.withPresencePenalty(number(node.get("presence_penalty"), "presence_penalty"));
        }
        if (node.has("frequency_penalty")) {
            p = p.withFrequencyPenalty(number(node.get("frequency_penalty"), "frequency_penalty"));
        }
        if (node.has("seed")) {
            JsonNode seed = node.get("seed");
            if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
                throw new IllegalArgumentException("field \"seed\" must be a 64-bit integer, got " + seed);
            }
            p = p.withSeed(seed.asLong());
        }
        if (node.has("stop")) {
            p = p.withStopStrings(stops(node.get("stop")));
        }
        int n = node.has("n") ? integer(node.get("n"), "n") : 1;
        int priority = node.has("priority") ? integer(node.get("priority"), "priority") : 0;
        int logprobs = node.has("logprobs") ? integer(node.get("logprobs"), "logprobs") : 0;
        boolean ignoreEos = false;
        if (node.has("ignore_eos")) {
            if (!node.get("ignore_eos").isBoolean()) {
                throw new IllegalArgumentException("field \"ignore_eos\" must be true or false");
            }
            ignoreEos = node.get("ignore_eos").asBoolean();
        }
        return new Request(id, promptText, promptTokens, p, n, priority, logprobs, null, ignoreEos);
    }

    private static List<String> stops(JsonNode stop) {
        List<String> out = new ArrayList<>();
        if (stop.isTextual()) {
            out.add(stop.asText());
        } else if (stop.isArray() && stop.size() <= 64) {
            for (int i = 0; i < stop.size(); i++) {
                if (!stop.get(i).isTextual()) {
                    throw new IllegalArgumentException("field \"stop[" + i + "]\" must be a string");
                }
                out.add(stop.get(i).asText());
            }
        } else {
            throw new IllegalArgumentException("field \"stop\" must be a string or an array of at most 64 strings");
        }
        return out;
    }

    private static int integer(JsonNode v, String field) {
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new IllegalArgumentException("field \"" + field + "\" must be a 32-bit integer, got " + (v == null ? "nothing" : v));
        }
        return v.asInt();
    }

    private static float number(JsonNode v, String field) {
        if (v == null || !v.isNumber()) {
            throw new IllegalArgumentException("field \"" + field + "\" must be a number, got " + (v == null ? "nothing" : v));
        }
        return (float) v.asDouble();
    }

    private static String type(JsonNode v) {
        JsonNodeType t = v.getNodeType();
        return t.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Ids already present in an existing output file's complete lines. */
    static void collectDoneIds(List<String> outputLines, Map<String, Integer> done) {
        int number = 0;
        for (String line : outputLines) {
            number++;
            try {
                JsonNode node = JSON.readTree(line);
                if (node != null && node.has("id")) {
                    done.put(key(node.get("id")), number);
                }
            } catch (JsonProcessingException e) {
                // A line the previous run did not finish writing: its request runs again.
            }
        }
    }
}
