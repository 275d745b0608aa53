package dev.lathe.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chat templates in the styles models ship (ChatML-like, Llama-2-like with raise_exception), the default, and where they are read from. */
class ServerChatTemplateTest {
    private static final List<Map<String, Object>> CONVERSATION = List.of(
            Map.of("role", "system", "content", "Be brief."),
            Map.of("role", "user", "content", "Hello"));

    @Test
    void defaultTemplate() {
        ChatTemplate template = new ChatTemplate(ChatTemplate.DEFAULT_TEMPLATE, "default", "<s>", "</s>");
        assertEquals("system: Be brief.\nuser: Hello\nassistant:", template.render(CONVERSATION));
    }

    @Test
    void chatMlStyleWithHuggingFaceWhitespaceRules() {
        String source = """
                {% for message in messages %}
                {{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}
                    {% if add_generation_prompt %}
                {{ '<|im_start|>assistant\\n' }}{% endif %}""";
        String rendered = new ChatTemplate(source, "test", "", "<|im_end|>").render(CONVERSATION);
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
                rendered);
    }

    @Test
    void bosTokenAndRaiseException() {
        String source = "{{ bos_token }}{% for message in messages %}"
                + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                + "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
                + "[{{ message['role'] }}] {{ message['content'] }} {{ eos_token }}{% endfor %}";
        ChatTemplate template = new ChatTemplate(source, "test", "<s>", "</s>");
        String ok = template.render(List.of(Map.of("role", "user", "content", "Hi")));
        assertEquals("<s>[user] Hi </s>", ok);
        assertTrue(template.rendersBos(ok));
        ApiException error = assertThrows(ApiException.class, () -> template.render(CONVERSATION));
        assertEquals(400, error.status());
        assertEquals("messages", error.param());
        assertTrue(error.getMessage().contains("roles must alternate"), error.getMessage());
    }

    @Test
    void tokenizerConfigTemplateAsStringOrNamedList(@TempDir Path dir) throws Exception {
        Path plain = dir.resolve("plain.json");
        Files.writeString(plain, "{\"chat_template\": \"{{ messages[0]['content'] }}\"}");
        assertEquals("{{ messages[0]['content'] }}", ChatTemplate.fromTokenizerConfig(plain));
        Path named = dir.resolve("named.json");
        Files.writeString(named, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": \"y\"}]}");
        assertEquals("y", ChatTemplate.fromTokenizerConfig(named));
        Path none = dir.resolve("none.json");
        Files.writeString(none, "{\"bos_token\": \"<s>\"}");
        assertEquals(null, ChatTemplate.fromTokenizerConfig(none));

        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"<{{ messages[0]['content'] }}>\"}");
        try (var model = dev.lathe.core.format.ModelLoader.load(dev.lathe.core.testing.SharedData.require(
                "models/stories260K/stories260K.bin"))) {
            assertEquals("default", ChatTemplate.forModel(model, "<s>", "</s>").source());
            ChatTemplate beside = ChatTemplate.forModel(model, dir.resolve("tokenizer.json"), "<s>", "</s>");
            assertEquals("<Hi>", beside.render(List.of(Map.of("role", "user", "content", "Hi"))));
        }
    }
}
