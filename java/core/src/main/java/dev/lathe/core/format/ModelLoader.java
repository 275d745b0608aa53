package dev.lathe.core.format;

import dev.lathe.core.format.hf.HfModelReader;
import dev.lathe.core.format.llama2c.Llama2cCheckpointReader;
import dev.lathe.core.format.llama2c.Llama2cQuantizedReader;
import dev.lathe.core.gguf.GgufModelReader;
import dev.lathe.core.io.MappedFile;
import dev.lathe.core.io.ModelFormatException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Opens a model of any supported format, recognised by content rather than by file name:
 * a directory is a Hugging Face checkpoint, a file starting with "GGUF" is GGUF, one starting with
 * llama2.c's "ak42" magic is its int8 export, and a file whose size is exactly what its first seven
 * int32 imply is a legacy llama2.c checkpoint.
 */
public final class ModelLoader {
    private static final byte[] GGUF_MAGIC = {'G', 'G', 'U', 'F'};

    private ModelLoader() {
    }

    private static final Logger LOG = LoggerFactory.getLogger(ModelLoader.class);

    /** Reads the model at {@code model}; a path that is none of the formats gets an error saying which were tried. */
    public static LoadedModel load(Path model) {
        long start = System.nanoTime();
        LoadedModel loaded = loadByContent(model);
        LOG.info("loaded {} ({}, {}): {} tensors, {} MB of weights, in {} ms", loaded.source(), loaded.format(),
                loaded.config().architecture(), loaded.tensors().size(), String.format("%.1f", loaded.weightBytes() / 1e6),
                (System.nanoTime() - start) / 1_000_000);
        return loaded;
    }

    private static LoadedModel loadByContent(Path model) {
        String source = model.toString();
        if (Files.isDirectory(model)) {
            return HfModelReader.read(model);
        }
        if (!Files.isRegularFile(model)) {
            throw new ModelFormatException(source, "no such file or directory");
        }
        byte[] prefix = MappedFile.readPrefix(model, 4);
        if (prefix.length == 4 && Arrays.equals(prefix, GGUF_MAGIC)) {
            return loadGguf(model);
        }
        if (prefix.length == 4
                && ByteBuffer.wrap(prefix).order(ByteOrder.LITTLE_ENDIAN).getInt() == Llama2cQuantizedReader.MAGIC) {
            return Llama2cQuantizedReader.read(model);
        }
        try {
            return Llama2cCheckpointReader.read(model);
        } catch (ModelFormatException legacyProblem) {
            throw new ModelFormatException(source, "not a model Lathe can read. Tried: Hugging Face (not a directory), "
                    + "GGUF (no \"GGUF\" magic), llama2.c int8 export (no \"ak42\" magic), legacy llama2.c checkpoint ("
                    + legacyProblem.problem() + ")", legacyProblem);
        }
    }

    private static LoadedModel loadGguf(Path model) {
        return GgufModelReader.read(model);
    }
}
