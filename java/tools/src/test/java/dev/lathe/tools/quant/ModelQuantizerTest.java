package dev.lathe.tools.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufValue;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizers;

import java.io.PrintStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code lathe quantize} end to end on stories260K: what is written, how it reads back, and the errors. */
class ModelQuantizerTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    private static Path stories() {
        return SharedData.require("models/stories260K/stories260K-f32.gguf");
    }

    static Stream<Arguments> methods() {
        return Stream.of(
                Arguments.of(QuantOptions.of(QuantMethod.Q8_0)),
                Arguments.of(QuantOptions.of(QuantMethod.Q4_0)),
                Arguments.of(QuantOptions.of(QuantMethod.Q4_K)),
                Arguments.of(QuantOptions.of(QuantMethod.Q6_K)),
                Arguments.of(QuantOptions.of(QuantMethod.NF4)),
                Arguments.of(new QuantOptions(QuantMethod.NF4, 4, 64, false, null, 0, 0, false, true)),
                Arguments.of(QuantOptions.of(QuantMethod.RTN)),
                Arguments.of(new QuantOptions(QuantMethod.RTN, 8, 32, false, null, 0, 0, false)),
                Arguments.of(new QuantOptions(QuantMethod.RTN, 3, 64, false, null, 0, 0, false)));
    }

    /** The expected bytes of tensor {@code w} (from the f32 source) in {@code format}. */
    private static byte[] expectedBytes(WeightMatrix source, WeightFormat format, Arena arena) {
        float[] values = new float[source.rows() * source.cols()];
        for (int r = 0; r < source.rows(); r++) {
            source.dequantizeRow(r, values, r * source.cols());
        }
        MemorySegment bytes = switch (format) {
            case GgmlType t -> GgmlQuantizer.quantize(t, values, source.rows(), source.cols(), arena);
            case LatheFormat f -> LatheEncoder.encode(f, values, source.rows(), source.cols(), arena);
        };
        return bytes.toArray(ValueLayout.JAVA_BYTE);
    }

    @ParameterizedTest
    @MethodSource("methods")
    void everyTensorReadsBackAsPlannedAndTheModelGenerates(QuantOptions options, @TempDir Path dir) {
        Path out = dir.resolve("q.gguf");
        ModelQuantizer.quantize(stories(), out, options, false, QUIET);
        try (LoadedModel source = ModelLoader.load(stories()); LoadedModel written = ModelLoader.load(out);
             Arena arena = Arena.ofConfined()) {
            assertEquals(source.tensors().keySet(), written.tensors().keySet());
            int quantized = 0;
            for (WeightMatrix w : source.tensors().values()) {
                WeightMatrix back = written.tensor(w.name());
                WeightFormat planned = TensorPlanner.plan(w.name(), w.rows(), w.cols(), w.format(), options);
                assertEquals(planned == null ? w.format() : planned, back.format(), w.name());
                assertEquals(w.rows(), back.rows(), w.name());
                assertEquals(w.cols(), back.cols(), w.name());
                byte[] expected = planned == null ? w.data().toArray(ValueLayout.JAVA_BYTE) : expectedBytes(w, planned, arena);
                assertArrayEquals(expected, back.data().toArray(ValueLayout.JAVA_BYTE), w.name());
                if (planned != null) {
                    quantized++;
                }
            }
            assertTrue(quantized >= 30, "most matrices are quantized, got " + quantized);

            Generator generator = new Generator(new LlamaModel(written, new CpuBackend(1)), Tokenizers.create(written.vocabulary()));
            GenerationResult r = generator.generate("Once upon a time", SamplingParams.greedy().withMaxNewTokens(24), (text) -> { });
            assertEquals(24, r.tokens().length, "generated " + r.text());
            assertTrue(r.text().chars().filter(Character::isLetter).count() > 30, "text, not noise: " + r.text());
        }
    }

    /**
     * {@code --mixed sensitivity}: the linears the rule gives INT4 are written INT4 or INT8, within
     * the budget over them; the rest is as the rule says; a budget outside the range is an error.
     */
    @Test
    void sensitivityMixingStaysWithinTheBudget(@TempDir Path dir) throws Exception {
        Path text = Files.writeString(dir.resolve("calib.txt"), ("Once upon a time, there was a little girl named Lily."
                + " She liked to play in the park with her dog. One day the sun was hot and they sat under a big tree. ").repeat(8));
        QuantOptions options = new QuantOptions(QuantMethod.RTN, 4, 32, true, text, 4, 32, false);
        LatheFormat low = (LatheFormat) options.target();
        double budget = 5.5;
        Path out = dir.resolve("mixed.gguf");
        ModelQuantizer.quantize(stories(), out, options, budget, false, QUIET);
        try (LoadedModel source = ModelLoader.load(stories()); LoadedModel written = ModelLoader.load(out)) {
            long bytes = 0;
            long params = 0;
            int upgraded = 0;
            for (WeightMatrix w : source.tensors().values()) {
                WeightFormat rule = TensorPlanner.plan(w.name(), w.rows(), w.cols(), w.format(), options);
                WeightFormat got = written.tensor(w.name()).format();
                if (low.equals(rule)) {
                    assertTrue(got.equals(low) || got.equals(SensitivityMixing.HIGH), w.name() + " is " + got);
                    upgraded += got.equals(SensitivityMixing.HIGH) ? 1 : 0;
                    bytes += written.tensor(w.name()).byteSize();
                    params += (long) w.rows() * w.cols();
                } else {
                    assertEquals(rule == null ? w.format() : rule, got, w.name());
                }
            }
            assertTrue(upgraded > 0, "a budget of 5.5 bits/weight over INT4-g32 (4.75) upgrades some tensors");
            assertTrue(8.0 * bytes / params <= budget, 8.0 * bytes / params + " bits/weight");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelQuantizer.quantize(stories(), dir.resolve("bad.gguf"), options, 4.0, false, QUIET));
        assertTrue(e.getMessage().contains("--bpw-budget"), e.getMessage());
        IllegalArgumentException noCalib = assertThrows(IllegalArgumentException.class, () -> ModelQuantizer.quantize(stories(),
                dir.resolve("bad.gguf"), new QuantOptions(QuantMethod.RTN, 4, 32, true, null, 0, 0, false), 5.5, false, QUIET));
        assertTrue(noCalib.getMessage().contains("--calib"), noCalib.getMessage());
    }

    @Test
    void metadataIsCopiedAndTheFileTypeSet(@TempDir Path dir) {
        Path out = dir.resolve("q4_0.gguf");
        ModelQuantizer.quantize(stories(), out, QuantOptions.of(QuantMethod.Q4_0), false, QUIET);
        try (GgufFile in = GgufFile.open(stories()); GgufFile written = GgufFile.open(out)) {
            for (Map.Entry<String, GgufValue> e : in.metadata().asMap().entrySet()) {
                if (!e.getKey().equals("general.file_type")) {
                    assertEquals(e.getValue().summary(), written.metadata().raw(e.getKey()).summary(), e.getKey());
                }
            }
            assertEquals(2, written.metadata().integer("general.file_type"), "LLAMA_FTYPE_MOSTLY_Q4_0");
            assertEquals("q4_0", written.metadata().string("lathe.quantization.method"));
        }
    }

    @Test
    void int8KeepsGreedyTextOfTheF32Model(@TempDir Path dir) {
        Path out = dir.resolve("int8.gguf");
        ModelQuantizer.quantize(stories(), out, new QuantOptions(QuantMethod.RTN, 8, 32, false, null, 0, 0, false), false, QUIET);
        String[] texts = new String[2];
        Path[] models = {stories(), out};
        for (int i = 0; i < 2; i++) {
            try (LoadedModel m = ModelLoader.load(models[i])) {
                Generator g = new Generator(new LlamaModel(m, new CpuBackend(1)), Tokenizers.create(m.vocabulary()));
                texts[i] = g.generate("Once upon a time", SamplingParams.greedy().withMaxNewTokens(12), (t) -> { }).text();
            }
        }
        assertEquals(texts[0], texts[1]);
    }

    @Test
    void badParametersGetClearErrors(@TempDir Path dir) throws Exception {
        IllegalArgumentException bits = assertThrows(IllegalArgumentException.class,
                () -> new QuantOptions(QuantMethod.RTN, 5, 32, true, null, 0, 0, false));
        assertTrue(bits.getMessage().contains("--bits 5"), bits.getMessage());
        IllegalArgumentException doubleQuant = assertThrows(IllegalArgumentException.class,
                () -> new QuantOptions(QuantMethod.RTN, 4, 32, true, null, 0, 0, false, true));
        assertTrue(doubleQuant.getMessage().contains("--double-quant"), doubleQuant.getMessage());
        IllegalArgumentException group = assertThrows(IllegalArgumentException.class,
                () -> new QuantOptions(QuantMethod.RTN, 4, 48, true, null, 0, 0, false));
        assertTrue(group.getMessage().contains("--group-size") && group.getMessage().contains("48"), group.getMessage());
        IllegalArgumentException calib = assertThrows(IllegalArgumentException.class,
                () -> new QuantOptions(QuantMethod.GPTQ, 4, 32, true, null, 8, 64, false));
        assertTrue(calib.getMessage().contains("--calib"), calib.getMessage());

        Path existing = Files.writeString(dir.resolve("exists.gguf"), "keep me");
        IllegalArgumentException exists = assertThrows(IllegalArgumentException.class,
                () -> ModelQuantizer.quantize(stories(), existing, QuantOptions.of(QuantMethod.Q8_0), false, QUIET));
        assertTrue(exists.getMessage().contains("--force"), exists.getMessage());
        assertEquals("keep me", Files.readString(existing));
        ModelQuantizer.quantize(stories(), existing, QuantOptions.of(QuantMethod.Q8_0), true, QUIET);
        assertTrue(Files.size(existing) > 100_000);
    }

    @Test
    void aFailedWriteLeavesNothingUnderTheOutputName(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("never.gguf");
        assertThrows(IllegalStateException.class, () -> AtomicOutput.write(out, false, partial -> {
            try {
                Files.writeString(partial, "half a model");
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            throw new IllegalStateException("interrupted");
        }));
        assertFalse(Files.exists(out));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(0, files.count(), "the partial file is removed too");
        }
    }

    @Test
    void theRuleKeepsVectorsAndEmbeddingsAndOddShapesAtHigherPrecision() {
        QuantOptions int4 = QuantOptions.of(QuantMethod.RTN);
        assertNull(TensorPlanner.plan("blk.0.attn_norm.weight", 1, 64, GgmlType.F32, int4));
        assertEquals(LatheFormat.int8Channel(), TensorPlanner.plan("token_embd.weight", 512, 64, GgmlType.F32, int4));
        assertEquals(LatheFormat.intGroup(4, 32, true), TensorPlanner.plan("blk.0.ffn_up.weight", 172, 64, GgmlType.F32, int4));
        assertEquals(LatheFormat.int8Channel(), TensorPlanner.plan("blk.0.ffn_down.weight", 64, 172, GgmlType.F32, int4));
        QuantOptions q4k = QuantOptions.of(QuantMethod.Q4_K);
        assertEquals(GgmlType.Q4_K, TensorPlanner.plan("blk.0.ffn_up.weight", 2816, 1024, GgmlType.F32, q4k));
        assertEquals(GgmlType.Q8_0, TensorPlanner.plan("blk.0.ffn_up.weight", 172, 64, GgmlType.F32, q4k));
        assertEquals(GgmlType.F16, TensorPlanner.plan("blk.0.ffn_down.weight", 64, 172, GgmlType.F32, q4k));
        assertNull(TensorPlanner.plan("token_embd.weight", 32000, 1024, GgmlType.Q8_0, q4k));
        assertNotNull(TensorPlanner.plan("output.weight", 32000, 1024, GgmlType.F32, q4k));
    }

    /**
     * llama.cpp's Q4_K_M and Q5_K_M mixes (llama_tensor_get_type), written out here for a 16-layer
     * model: the output head Q6_K; attn_v and ffn_down Q6_K in layers 0, 1, 4, 7, 10, 13, 14 and 15
     * (the first and last eighth, and every third from layer 2 + 2); every other matrix, the token
     * embedding included, the base type; norms F32.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = QuantMethod.class, names = {"Q4_K_M", "Q5_K_M"})
    void kQuantMixesFollowLlamaCppsRule(QuantMethod method, @TempDir Path dir) {
        Path f32 = dir.resolve("f32.gguf");
        new dev.lathe.core.format.SyntheticModel(256, 16, 8, 4, 768, 2048, 256, GgmlType.F32, 7).write(f32);
        Path out = dir.resolve(method.name() + ".gguf");
        ModelQuantizer.quantize(f32, out, QuantOptions.of(method), false, QUIET);
        GgmlType base = method == QuantMethod.Q4_K_M ? GgmlType.Q4_K : GgmlType.Q5_K;
        java.util.Set<Integer> moreBits = java.util.Set.of(0, 1, 4, 7, 10, 13, 14, 15);
        try (LoadedModel loaded = ModelLoader.load(out)) {
            int checked = 0;
            for (WeightMatrix w : loaded.tensors().values()) {
                String name = w.name();
                GgmlType expected;
                if (w.rows() == 1) {
                    expected = GgmlType.F32;
                } else if (name.equals("output.weight")) {
                    expected = GgmlType.Q6_K;
                } else if (name.endsWith(".attn_v.weight") || name.endsWith(".ffn_down.weight")) {
                    int layer = Integer.parseInt(name.split("\\.")[1]);
                    expected = moreBits.contains(layer) ? GgmlType.Q6_K : base;
                } else {
                    expected = base;
                }
                assertEquals(expected, w.type(), name);
                checked++;
            }
            assertTrue(checked > 16 * 7, "every tensor checked: " + checked);
        }
        try (GgufFile written = GgufFile.open(out)) {
            assertEquals(method == QuantMethod.Q4_K_M ? 15 : 17, written.metadata().integer("general.file_type"),
                    "LLAMA_FTYPE_MOSTLY_" + method.name());
        }
    }
}
