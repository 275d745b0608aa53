package dev.lathe.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.engine.Completion;
import dev.lathe.core.engine.Engine;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.RequestHandle;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.engine.TokenEvent;
import dev.lathe.core.engine.TokenLogprobs;
import dev.lathe.core.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutionException;

/**
 * Runs one {@link GenerationRequest} on the engine and writes the OpenAI answer: a whole
 * {@code text_completion} / {@code chat.completion} object, or Server-Sent Events of chunks (one
 * per produced token, as it is produced) ending with {@code data: [DONE]}.
 */
final class CompletionRunner {
    /** Where a stream's events go; a failed send means the client is gone. */
    interface EventSink {
        void send(String data) throws IOException;
    }

    private final Engine engine;
    private final Tokenizer tokenizer;
    private final ServerMetrics metrics;
    private final ObjectMapper json;
    private final String modelName;

    CompletionRunner(Engine engine, Tokenizer tokenizer, ServerMetrics metrics, ObjectMapper json, String modelName) {
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.metrics = metrics;
        this.json = json;
        this.modelName = modelName;
    }

    /** Queues the request on the engine. An engine refusal (e.g. the KV pool is too small for it) is a 400. */
    RequestHandle submit(String id, GenerationRequest r) {
        Request request = Request.ofTokens(id, r.promptTokens(), r.sampling())
                .withN(r.n())
                // NOTE: the engine returns a token's log-probability only with at least one alternative.
                .withLogprobs(r.logprobs() ? Math.max(1, r.topLogprobs()) : 0)
                .withIgnoreEos(r.ignoreEos());
        try {
            RequestHandle handle = engine.submit(request);
            metrics.prompt(r.promptTokens().length);
            return handle;
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(e.getMessage());
        } catch (IllegalStateException e) {
            throw new ApiException(503, "server_error", null, null, "the engine is not accepting requests: " + e.getMessage());
        }
    }

    /** Waits for the whole answer and returns its JSON. */
    String complete(String id, GenerationRequest r, RequestHandle handle, long arrivalNanos) {
        Iterator<TokenEvent> events = handle.tokens();
        TokenTimer timer = new TokenTimer(r.n(), arrivalNanos);
        while (events.hasNext()) {
            timer.onEvent(events.next());
        }
        RequestOutput output = await(handle);
        ObjectNode root = header(id, r.chat() ? "chat.completion" : "text_completion");
        ArrayNode choices = root.putArray("choices");
        for (Completion c : output.completions()) {
            ObjectNode choice = choices.addObject();
            choice.put("index", c.index());
            if (r.chat()) {
                ObjectNode message = choice.putObject("message");
                message.put("role", "assistant");
                message.put("content", c.text());
            } else {
                choice.put("text", c.text());
            }
            if (r.logprobs()) {
                choice.set("logprobs", r.chat() ? chatLogprobs(c.logprobs(), r.topLogprobs())
                        : completionLogprobs(c.logprobs(), r.topLogprobs(), 0));
            } else {
                choice.putNull("logprobs");
            }
            choice.put("finish_reason", c.finishReason());
        }
        root.set("usage", usage(output));
        return root.toString();
    }

    /** Streams the answer; an {@link IOException} from the sink (client gone) propagates after the request is cancelled. */
    void stream(String id, GenerationRequest r, RequestHandle handle, long arrivalNanos, EventSink sink) throws IOException {
        String object = r.chat() ? "chat.completion.chunk" : "text_completion";
        try {
            if (r.chat()) {
                for (int i = 0; i < r.n(); i++) {
                    ObjectNode delta = json.createObjectNode().put("role", "assistant").put("content", "");
                    sink.send(chunk(id, object, r, i, delta, null, null).toString());
                }
            }
            int[] textOffsets = new int[r.n()];
            Iterator<TokenEvent> events = handle.tokens();
            TokenTimer timer = new TokenTimer(r.n(), arrivalNanos);
            while (events.hasNext()) {
                TokenEvent event = events.next();
                timer.onEvent(event);
                boolean withLogprobs = r.logprobs() && event.logprobs() != null;
                if (event.text().isEmpty() && !withLogprobs) {
                    continue; // NOTE: text held back (a partial character or a possible stop string) comes in a later event
                }
                ObjectNode logprobs = null;
                if (withLogprobs) {
                    List<TokenLogprobs> one = List.of(event.logprobs());
                    logprobs = r.chat() ? chatLogprobs(one, r.topLogprobs())
                            : completionLogprobs(one, r.topLogprobs(), textOffsets[event.index()]);
                }
                textOffsets[event.index()] += event.text().length();
                ObjectNode delta = r.chat() ? json.createObjectNode().put("content", event.text()) : null;
                ObjectNode chunk = chunk(id, object, r, event.index(), delta, null, logprobs);
                if (!r.chat()) {
                    ((ObjectNode) chunk.get("choices").get(0)).put("text", event.text());
                }
                sink.send(chunk.toString());
            }
            RequestOutput output = await(handle);
            for (Completion c : output.completions()) {
                ObjectNode chunk = chunk(id, object, r, c.index(), r.chat() ? json.createObjectNode() : null, c.finishReason(), null);
                if (!r.chat()) {
                    ((ObjectNode) chunk.get("choices").get(0)).put("text", "");
                }
                sink.send(chunk.toString());
            }
            if (r.includeUsage()) {
                ObjectNode last = header(id, object);
                last.putArray("choices");
                last.set("usage", usage(output));
                sink.send(last.toString());
            }
            sink.send("[DONE]");
        } catch (IOException e) {
            handle.cancel();
            throw e;
        }
    }

    private ObjectNode chunk(String id, String object, GenerationRequest r, int index, ObjectNode delta, String finishReason,
                             ObjectNode logprobs) {
        ObjectNode root = header(id, object);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", index);
        if (delta != null) {
            choice.set("delta", delta);
        }
        choice.set("logprobs", logprobs);
        choice.put("finish_reason", finishReason);
        if (r.includeUsage()) {
            root.putNull("usage");
        }
        return root;
    }

    private ObjectNode header(String id, String object) {
        ObjectNode root = json.createObjectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", System.currentTimeMillis() / 1000);
        root.put("model", modelName);
        return root;
    }

    private ObjectNode usage(RequestOutput output) {
        int prompt = output.promptTokens().length;
        int completion = output.completionTokens();
        return json.createObjectNode().put("prompt_tokens", prompt).put("completion_tokens", completion)
                .put("total_tokens", prompt + completion);
    }

    /** The legacy completions shape: parallel arrays of tokens, log-probabilities, alternatives and text offsets. */
    private ObjectNode completionLogprobs(List<TokenLogprobs> entries, int top, int firstOffset) {
        ObjectNode node = json.createObjectNode();
        ArrayNode tokens = node.putArray("tokens");
        ArrayNode values = node.putArray("token_logprobs");
        ArrayNode tops = node.putArray("top_logprobs");
        ArrayNode offsets = node.putArray("text_offset");
        int offset = firstOffset;
        for (TokenLogprobs e : entries) {
            String text = tokenText(e.token());
            tokens.add(text);
            values.add(e.logprob());
            ObjectNode alternatives = tops.addObject();
            for (int i = 0; i < Math.min(top, e.topTokens().length); i++) {
                alternatives.put(tokenText(e.topTokens()[i]), e.topLogprobs()[i]);
            }
            offsets.add(offset);
            offset += text.length();
        }
        return node;
    }

    /** The chat shape: {@code {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}}. */
    private ObjectNode chatLogprobs(List<TokenLogprobs> entries, int top) {
        ObjectNode node = json.createObjectNode();
        ArrayNode content = node.putArray("content");
        for (TokenLogprobs e : entries) {
            ObjectNode entry = tokenEntry(e.token(), e.logprob());
            ArrayNode alternatives = entry.putArray("top_logprobs");
            for (int i = 0; i < Math.min(top, e.topTokens().length); i++) {
                alternatives.add(tokenEntry(e.topTokens()[i], e.topLogprobs()[i]));
            }
            content.add(entry);
        }
        return node;
    }

    private ObjectNode tokenEntry(int token, float logprob) {
        ObjectNode entry = json.createObjectNode();
        entry.put("token", tokenText(token));
        entry.put("logprob", logprob);
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : tokenizer.decodeBytes(token)) {
            bytes.add(b & 0xff);
        }
        return entry;
    }

    private String tokenText(int token) {
        return new String(tokenizer.decodeBytes(token), StandardCharsets.UTF_8);
    }

    private static RequestOutput await(RequestHandle handle) {
        try {
            return handle.result().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            handle.cancel();
            throw new ApiException(503, "server_error", null, null, "interrupted while generating");
        } catch (ExecutionException e) {
            throw new IllegalStateException("the engine failed: " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** Time to first token and inter-token latency of one request's token events, into the metrics. */
    private final class TokenTimer {
        private final long arrivalNanos;
        private final long[] lastTokenNanos;
        private boolean first = true;

        TokenTimer(int n, long arrivalNanos) {
            this.arrivalNanos = arrivalNanos;
            this.lastTokenNanos = new long[n];
        }

        void onEvent(TokenEvent event) {
            if (event.token() < 0) {
                return; // the text released at a stop token: no new token
            }
            long now = System.nanoTime();
            if (first) {
                metrics.firstToken(now - arrivalNanos);
                first = false;
            } else if (lastTokenNanos[event.index()] != 0) {
                metrics.interToken(now - lastTokenNanos[event.index()]);
            }
            lastTokenNanos[event.index()] = now;
            metrics.tokens(1);
        }
    }
}
