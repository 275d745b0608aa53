package dev.lathe.cli;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.tokenizer.Tokenizer;
import dev.lathe.core.tokenizer.Tokenizers;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.StringJoiner;
import java.util.concurrent.Callable;

/** {@code lathe tokenize}: token ids of a text, space-separated on one line. */
@Command(name = "tokenize", mixinStandardHelpOptions = true, description = "Print the token ids of a text, space-separated.")
final class TokenizeCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", description = "Model whose tokenizer to use (or give only -z).")
    Path model;

    @Option(names = {"-z", "--tokenizer"}, paramLabel = "TOKENIZER", description = "llama2.c tokenizer.bin, tokenizer.json or GGUF.")
    Path tokenizer;

    @Option(names = "--no-bos", description = "Do not prepend BOS.")
    boolean noBos;

    @Option(names = "--parse-special", description = "Recognise control tokens written in the text, e.g. <|eot_id|>.")
    boolean parseSpecial;

    @ArgGroup(multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--text", paramLabel = "T", description = "The text.")
        String text;

        @Option(names = "--file", paramLabel = "F", description = "A UTF-8 file holding the text.")
        Path file;
    }

    @Override
    public Integer call() throws IOException {
        String text = input.text != null ? input.text : Files.readString(input.file, StandardCharsets.UTF_8);
        Tokenizer t = load();
        StringJoiner ids = new StringJoiner(" ");
        for (int id : t.encode(text, !noBos, parseSpecial)) {
            ids.add(Integer.toString(id));
        }
        System.out.println(ids);
        return 0;
    }

    private Tokenizer load() {
        if (model == null) {
            if (tokenizer == null) {
                throw new IllegalArgumentException("give a model (-m) or a tokenizer (-z)");
            }
            return Tokenizers.create(TokenizerLoader.read(tokenizer));
        }
        try (LoadedModel m = ModelLoader.load(model)) {
            return TokenizerLoader.forModel(m, tokenizer);
        }
    }
}
