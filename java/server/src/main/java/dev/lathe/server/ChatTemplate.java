package dev.lathe.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.lathe.core.format.LoadedModel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders chat messages into a prompt with the model's own Jinja chat template (GGUF
 * {@code tokenizer.chat_template}, or {@code chat_template} in a Hugging Face
 * tokenizer_config.json), evaluated by Jinjava with Hugging Face's settings (trim_blocks,
 * lstrip_blocks) and variables ({@code messages}, {@code add_generation_prompt},
 * {@code bos_token}, {@code eos_token}, {@code raise_exception}).
 *
 * <p>A model without a template gets {@link #DEFAULT_TEMPLATE}: one {@code role: content} line per
 * message, then {@code assistant:} to prompt the reply.
 */
public final class ChatTemplate {
    /** The template for models that carry none (documented in README.md). */
    public static final String DEFAULT_TEMPLATE = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
            + "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

    private final String source;
    private final String template;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    /**
     * @param template the Jinja source
     * @param source   where it came from, for messages ("GGUF tokenizer.chat_template", "default", ...)
     * @param bosToken the BOS token's text ("" when the model has none)
     * @param eosToken the EOS token's text
     */
    public ChatTemplate(String template, String source, String bosToken, String eosToken) {
        this.template = template;
        this.source = source;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
    }

    /** The model's template when it has one (see the class comment), else the default. */
    public static ChatTemplate forModel(LoadedModel model, String bosToken, String eosToken) {
        return forModel(model, null, bosToken, eosToken);
    }

    /**
     * As {@link #forModel(LoadedModel, String, String)}, looking first beside a tokenizer given
     * explicitly ({@code -z}): a directory's tokenizer_config.json, or the one next to a tokenizer.json.
     */
    public static ChatTemplate forModel(LoadedModel model, Path tokenizerOverride, String bosToken, String eosToken) {
        if (tokenizerOverride != null) {
            Path dir = Files.isDirectory(tokenizerOverride) ? tokenizerOverride : tokenizerOverride.toAbsolutePath().getParent();
            ChatTemplate found = dir == null ? null : fromDirectory(dir, bosToken, eosToken);
            if (found != null) {
                return found;
            }
        }
        Object gguf = model.metadata().get("tokenizer.chat_template");
        if (gguf instanceof String text && !text.isBlank()) {
            return new ChatTemplate(text, "GGUF tokenizer.chat_template", bosToken, eosToken);
        }
        Path directory = Path.of(model.source());
        ChatTemplate found = Files.isDirectory(directory) ? fromDirectory(directory, bosToken, eosToken) : null;
        return found != null ? found : new ChatTemplate(DEFAULT_TEMPLATE, "default", bosToken, eosToken);
    }

    private static ChatTemplate fromDirectory(Path directory, String bosToken, String eosToken) {
        Path config = directory.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(config)) {
            return null;
        }
        String text = fromTokenizerConfig(config);
        return text == null ? null : new ChatTemplate(text, config + " chat_template", bosToken, eosToken);
    }

    /** {@code chat_template} of a tokenizer_config.json: a string, or the one named "default" in a list. */
    static String fromTokenizerConfig(Path config) {
        try {
            JsonNode node = new ObjectMapper().readTree(config.toFile()).path("chat_template");
            if (node.isTextual()) {
                return node.asText();
            }
            for (JsonNode named : node) {
                if ("default".equals(named.path("name").asText()) && named.path("template").isTextual()) {
                    return named.path("template").asText();
                }
            }
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + config + ": " + e.getMessage(), e);
        }
    }

    public String source() {
        return source;
    }

    /** Whether the rendered prompt already starts with BOS (then the tokenizer must not add another). */
    public boolean rendersBos(String prompt) {
        return !bosToken.isEmpty() && prompt.startsWith(bosToken);
    }

    /**
     * The prompt for {@code messages} (each a map with "role" and "content"), ending with the
     * assistant's turn. A template error, including one the template raises itself (e.g. roles
     * that do not alternate), is a 400 naming "messages".
     */
    public String render(List<Map<String, Object>> messages) {
        Map<String, Object> bindings = new HashMap<>();
        bindings.put("messages", messages);
        bindings.put("add_generation_prompt", true);
        bindings.put("bos_token", bosToken);
        bindings.put("eos_token", eosToken);
        RenderResult result = jinjava.renderForResult(template, bindings);
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw ApiException.badField("messages", "the chat template (" + source + ") failed on these messages: "
                        + raisedMessage(error));
            }
        }
        return result.getOutput();
    }

    /** The template's {@code raise_exception(message)}: fails the render with the template's message. */
    public static String raiseException(String message) {
        throw new TemplateRaised(message);
    }

    /** The message the template raised, when it did, else Jinjava's. */
    private static String raisedMessage(TemplateError error) {
        for (Throwable t = error.getException(); t != null; t = t.getCause()) {
            if (t instanceof TemplateRaised raised) {
                return raised.getMessage();
            }
        }
        return error.getMessage();
    }

    /** What {@code raise_exception} throws, told apart from Jinjava's own errors. */
    private static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message);
        }
    }
}
