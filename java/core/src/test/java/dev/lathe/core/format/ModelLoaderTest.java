package dev.lathe.core.format;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelLoaderTest {
    @TempDir
    Path tmp;

    @Test
    void legacyCheckpointIsRecognisedByItsSize() {
        try (LoadedModel model = ModelLoader.load(SharedData.require("models/stories260K/stories260K.bin"))) {
            assertEquals("llama2.c", model.format());
            assertEquals(5, model.config().layers());
        }
    }

    @Test
    void int8ExportIsRecognisedByItsMagic() {
        try (LoadedModel model = ModelLoader.load(SharedData.require("models/stories260K/stories260K_q80.bin"))) {
            assertEquals("llama2.c v2 (int8, group 4)", model.format());
        }
    }

    @Test
    void ggufFileIsRecognisedByItsMagic() {
        try (LoadedModel model = ModelLoader.load(SharedData.require("models/stories260K/stories260K-f32.gguf"))) {
            assertTrue(model.format().startsWith("GGUF"), model.format());
            assertEquals(64, model.config().dim());
        }
    }

    @Test
    void aDirectoryIsAHuggingFaceCheckpoint() {
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(tmp));
        assertTrue(e.getMessage().contains(tmp.resolve("config.json").toString()), e.getMessage());
    }

    @Test
    void unrecognisedFileSaysWhatWasTried() throws Exception {
        Path file = Files.write(tmp.resolve("notes.txt"), "hello, this is not a model at all".getBytes());
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(file));
        assertTrue(e.getMessage().startsWith(file + ": not a model Lathe can read"), e.getMessage());
        for (String tried : new String[]{"Hugging Face", "GGUF", "\"ak42\"", "legacy llama2.c checkpoint ("}) {
            assertTrue(e.getMessage().contains(tried), tried + ": " + e.getMessage());
        }
    }

    @Test
    void emptyFileAndMissingPath() throws Exception {
        Path empty = Files.write(tmp.resolve("empty.bin"), new byte[0]);
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(empty));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        Path missing = tmp.resolve("nothing-here.gguf");
        var m = assertThrows(ModelFormatException.class, () -> ModelLoader.load(missing));
        assertEquals(missing + ": no such file or directory", m.getMessage());
    }
}
