package dev.lathe.cli;

import dev.lathe.core.backend.Backend;
import dev.lathe.core.backend.Backends;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tokenizer.Tokenizer;

import java.nio.file.Path;

/** A model loaded on a backend with its tokenizer: what generate, bench and demo run. */
final class ModelSession implements AutoCloseable {
    final LoadedModel loaded;
    final Tokenizer tokenizer;
    final Backend backend;
    final LlamaModel model;
    final Generator generator;

    ModelSession(Path modelPath, Path tokenizerPath, String backendName, int threads) {
        LoadedModel file = ModelLoader.load(modelPath);
        Backend opened = null;
        try {
            tokenizer = TokenizerLoader.forModel(file, tokenizerPath);
            opened = Backends.open(backendName, threads);
            model = new LlamaModel(file, opened);
        } catch (RuntimeException e) {
            if (opened != null) {
                opened.close();
            }
            file.close();
            throw e;
        }
        loaded = file;
        backend = opened;
        generator = new Generator(model, tokenizer);
    }

    ModelSession(ModelOptions options) {
        this(options.model, options.tokenizer, options.backend, options.threads);
    }

    @Override
    public void close() {
        backend.close();
        loaded.close();
    }
}
