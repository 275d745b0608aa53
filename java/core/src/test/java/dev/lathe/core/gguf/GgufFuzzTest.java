package dev.lathe.core.gguf;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.testing.TestRandom;
import dev.lathe.core.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Mutates a valid GGUF model's header thousands of times: every outcome must be a
 * {@link ModelFormatException} (or, for a tokenizer or a config that no longer makes sense, an
 * IllegalArgumentException with a message) or a model that loads and runs a forward step. Never an
 * OOM, a hang, an index error or a JVM crash.
 */
class GgufFuzzTest {
    private static final int ITERATIONS = 3000;

    @Test
    void mutatedHeadersGiveCleanErrorsOrWorkingModels() throws IOException {
        byte[] original = Files.readAllBytes(SharedData.require("models/stories260K/stories260K-q8_0.gguf"));
        long headerEnd;
        try (GgufFile gguf = GgufFile.open(SharedData.require("models/stories260K/stories260K-q8_0.gguf"))) {
            headerEnd = gguf.dataStart();
        }
        Random random = TestRandom.create("GgufFuzzTest");
        int clean = 0;
        int loaded = 0;
        try (CpuBackend backend = new CpuBackend(1)) {
            for (int i = 0; i < ITERATIONS; i++) {
                byte[] bytes = mutate(original, (int) headerEnd, random);
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment segment = arena.allocate(bytes.length, 64);
                    MemorySegment.copy(bytes, 0, segment, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, bytes.length);
                    LoadedModel model = GgufModelReader.fromFile(GgufFile.parse("fuzz#" + i, segment), arena);
                    if (model.vocabulary() != null) {
                        Tokenizers.create(model.vocabulary());
                    }
                    LlamaModel llama = new LlamaModel(model, backend);
                    try (KvCache cache = llama.newKvCache(1, 16)) {
                        llama.forward(BatchPlan.singleSequence(new int[] {1}, 0, new int[] {0}, 16, true), cache);
                    }
                    loaded++;
                } catch (ModelFormatException e) {
                    assertTrue(e.getMessage().startsWith("fuzz#" + i), e.getMessage());
                    clean++;
                } catch (IllegalArgumentException e) {
                    // e.g. a token id or a shape that the config no longer allows; must say what.
                    assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), "message-less " + e);
                    clean++;
                } catch (RuntimeException | Error e) {
                    fail("iteration " + i + " ended in " + e, e);
                }
            }
        }
        System.out.printf("GGUF fuzz: %d mutations, %d clean errors, %d models loaded and ran%n", ITERATIONS, clean, loaded);
        assertTrue(clean > 0 && loaded > 0, "the mutations should produce both outcomes");
    }

    /** Flips, overwrites or truncates bytes of the header (the first {@code headerEnd} bytes). */
    private static byte[] mutate(byte[] original, int headerEnd, Random random) {
        byte[] bytes = original.clone();
        int kind = random.nextInt(10);
        if (kind == 0) {
            return Arrays.copyOf(bytes, random.nextInt(headerEnd + 64));
        }
        int edits = 1 + random.nextInt(4);
        for (int e = 0; e < edits; e++) {
            int at = random.nextInt(headerEnd);
            switch (kind % 3) {
                case 0 -> bytes[at] ^= (byte) (1 << random.nextInt(8));
                case 1 -> bytes[at] = (byte) random.nextInt(256);
                default -> bytes[at] = (byte) (random.nextBoolean() ? 0xFF : 0x7F); // large counts and lengths
            }
        }
        return bytes;
    }
}
