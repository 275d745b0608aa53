package dev.lathe.core.format;

import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.io.MappedFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tokenizer.GgufVocabularyReader;
import dev.lathe.core.tokenizer.Llama2cTokenizerReader;
import dev.lathe.core.tokenizer.Tokenizer;
import dev.lathe.core.tokenizer.TokenizerJsonReader;
import dev.lathe.core.tokenizer.Tokenizers;
import dev.lathe.core.tokenizer.Vocabulary;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Finds the tokenizer for a model: the one given explicitly ({@code -z}), else the one the model
 * file carries. A model with neither is an error that says how to supply one.
 */
public final class TokenizerLoader {
    private TokenizerLoader() {
    }

    /**
     * @param override a llama2.c tokenizer.bin, a tokenizer.json, a directory holding one, or a
     *                 GGUF file whose metadata holds a vocabulary; null to use the model's own
     */
    public static Tokenizer forModel(LoadedModel model, Path override) {
        Vocabulary vocabulary = override != null ? read(override) : model.vocabulary();
        if (vocabulary == null) {
            throw new ModelFormatException(model.source(), "the model carries no tokenizer; pass one with -z "
                    + "(a llama2.c tokenizer.bin, a tokenizer.json or a GGUF file)");
        }
        if (vocabulary.size() > model.config().vocabSize()) {
            throw new ModelFormatException(vocabulary.source(), "the tokenizer has " + vocabulary.size()
                    + " tokens but the model's embedding has only " + model.config().vocabSize() + " rows");
        }
        return Tokenizers.create(vocabulary);
    }

    /** Reads tokenizer data from any supported file, recognised by content. */
    public static Vocabulary read(Path path) {
        if (Files.isDirectory(path)) {
            Path json = path.resolve("tokenizer.json");
            if (!Files.isRegularFile(json)) {
                throw new ModelFormatException(path.toString(), "directory has no tokenizer.json");
            }
            Path config = path.resolve("tokenizer_config.json");
            return TokenizerJsonReader.read(json, Files.isRegularFile(config) ? config : null);
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelFormatException(path.toString(), "tokenizer file not found");
        }
        byte[] prefix = MappedFile.readPrefix(path, 4);
        if (Arrays.equals(prefix, new byte[] {'G', 'G', 'U', 'F'})) {
            try (GgufFile gguf = GgufFile.open(path)) {
                return GgufVocabularyReader.read(gguf.metadata());
            }
        }
        if (prefix.length > 0 && prefix[0] == '{') {
            Path config = path.resolveSibling("tokenizer_config.json");
            return TokenizerJsonReader.read(path, Files.isRegularFile(config) ? config : null);
        }
        return Llama2cTokenizerReader.read(path);
    }
}
