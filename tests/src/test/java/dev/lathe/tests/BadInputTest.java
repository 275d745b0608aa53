package dev.lathe.tests;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufWriter;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Whole-model bad input: each case is a clear exception naming the file or argument and the problem. */
class BadInputTest {
    @TempDir
    Path tmp;

    private static void assertMentions(Exception e, String... fragments) {
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        }
    }

    @Test
    void promptLongerThanTheContextIsRefused() {
        try (LoadedModel loaded = ModelLoader.load(SharedData.require("models/stories260K/stories260K-f32.gguf"));
             CpuBackend backend = new CpuBackend(1)) {
            Generator generator = new Generator(new LlamaModel(loaded, backend), TokenizerLoader.forModel(loaded, null));
            String prompt = "Once upon a time ".repeat(200);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> generator.generate(prompt, SamplingParams.greedy(), null));
            assertMentions(e, "context length is 512");
        }
    }

    @Test
    void modelWithoutTokenizerSaysHowToGiveOne() {
        try (LoadedModel loaded = ModelLoader.load(SharedData.require("models/stories260K/stories260K.bin"))) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> TokenizerLoader.forModel(loaded, null));
            assertMentions(e, "stories260K.bin", "carries no tokenizer", "-z");
        }
    }

    @Test
    void tokenizerLargerThanTheModelIsRefused(@TempDir Path dir) {
        Path model = dir.resolve("tiny.gguf");
        new SyntheticModel(64, 1, 2, 2, 96, 300, 64, GgmlType.F32, 1).write(model);
        try (LoadedModel loaded = ModelLoader.load(model)) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> TokenizerLoader.forModel(loaded, SharedData.require("models/stories260K/tok512.bin")));
            assertMentions(e, "tok512.bin", "512 tokens", "300 rows");
        }
    }

    @Test
    void missingAndMisshapenTensorsAreNamed() throws IOException {
        Path good = tmp.resolve("good.gguf");
        new SyntheticModel(64, 1, 2, 2, 96, 300, 64, GgmlType.F32, 1).write(good);
        // Rewrite it with blk.0.ffn_up.weight of the wrong shape and blk.0.ffn_gate.weight missing.
        Path bad = tmp.resolve("bad.gguf");
        try (GgufFile source = GgufFile.open(good)) {
            GgufWriter w = new GgufWriter();
            source.metadata().asMap().forEach(w::put);
            for (var info : source.tensors().values()) {
                if (info.name().equals("blk.0.ffn_gate.weight")) {
                    continue;
                }
                long[] shape = info.name().equals("blk.0.ffn_up.weight") ? new long[] {95, 64} : reversed(info.dims());
                long bytes = info.name().equals("blk.0.ffn_up.weight") ? 95L * 64 * 4 : info.byteSize();
                var data = source.data(info);
                w.addTensor(info.name(), info.type(), shape, out -> out.copyFrom(data.asSlice(0, Math.min(bytes, data.byteSize()))));
            }
            w.write(bad);
        }
        try (LoadedModel loaded = ModelLoader.load(bad); CpuBackend backend = new CpuBackend(1)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> new LlamaModel(loaded, backend));
            assertMentions(e, "bad.gguf", "blk.0.ffn_gate.weight", "missing");
        }
    }

    private static long[] reversed(long[] dims) {
        long[] r = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            r[i] = dims[dims.length - 1 - i];
        }
        return r;
    }

    @Test
    void unsupportedArchitectureIsRefusedByName() throws IOException {
        Path file = tmp.resolve("phi.gguf");
        new GgufWriter().putString("general.architecture", "phi3")
                .addTensor("token_embd.weight", GgmlType.F32, new long[] {4, 32}, out -> out.fill((byte) 0)).write(file);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(file));
        assertMentions(e, "phi.gguf", "architecture 'phi3' is not supported");
    }

    @Test
    void truncatedModelFilesNameTheFile() throws IOException {
        for (String name : new String[] {"stories260K-q8_0.gguf", "stories260K.bin", "stories260K_q80.bin"}) {
            byte[] bytes = Files.readAllBytes(SharedData.require("models/stories260K/" + name));
            Path cut = tmp.resolve("cut-" + name);
            Files.write(cut, Arrays.copyOf(bytes, bytes.length - 100));
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(cut));
            assertMentions(e, cut.toString());
        }
    }

    @Test
    void notAModelAtAllListsWhatWasTried() throws IOException {
        Path text = tmp.resolve("notes.txt");
        Files.writeString(text, "hello, this is not a model");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(text));
        assertMentions(e, "notes.txt", "GGUF", "llama2.c");
    }
}
