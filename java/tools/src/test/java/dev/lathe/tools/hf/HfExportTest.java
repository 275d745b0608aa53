package dev.lathe.tools.hf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.hf.HfModelReader;
import dev.lathe.core.format.hf.SafetensorsFile;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import dev.lathe.core.tokenizer.Tokenizers;
import dev.lathe.tools.quant.ModelQuantizer;
import dev.lathe.tools.quant.QuantMethod;
import dev.lathe.tools.quant.QuantOptions;

import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code lathe quantize --output-format hf} end to end on stories260K: for every packing, the
 * directory read back by {@link HfModelReader} holds exactly the tensors of the model quantized
 * in memory (the same dequantized values, packed layers in the same Lathe format), and greedy
 * generation gives the same tokens.
 */
class HfExportTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
    private static final int TOKENS = 40;

    @TempDir
    static Path shared;
    private static Path calibration;

    @BeforeAll
    static void calibrationText() throws Exception {
        calibration = Files.writeString(shared.resolve("calib.txt"), ("Once upon a time, there was a little girl named Lily."
                + " She liked to play in the park with her dog. One day the sun was hot and they sat under a big tree. ").repeat(8));
    }

    private static Path stories() {
        return SharedData.require("models/stories260K/stories260K-f32.gguf");
    }

    static Stream<Arguments> packings() {
        return Stream.of(
                Arguments.of("gptq", new QuantOptions(QuantMethod.GPTQ, 4, 32, true, calibration, 4, 32, false)),
                Arguments.of("gptq-act-order", new QuantOptions(QuantMethod.GPTQ, 4, 32, true, calibration, 4, 32, true)),
                Arguments.of("gptq-2bit-sym", new QuantOptions(QuantMethod.GPTQ, 2, 64, false, calibration, 4, 32, false)),
                Arguments.of("awq", new QuantOptions(QuantMethod.AWQ, 4, 32, true, calibration, 4, 32, false)),
                Arguments.of("rtn-int4-zp", new QuantOptions(QuantMethod.RTN, 4, 32, true, null, 0, 0, false)),
                Arguments.of("rtn-int4-sym", new QuantOptions(QuantMethod.RTN, 4, 64, false, null, 0, 0, false)),
                Arguments.of("nf4", new QuantOptions(QuantMethod.NF4, 4, 64, false, null, 0, 0, false, false)),
                Arguments.of("nf4-double-quant", new QuantOptions(QuantMethod.NF4, 4, 32, false, null, 0, 0, false, true)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("packings")
    void exportedDirectoryReadsBackAsTheSameModel(String label, QuantOptions options, @TempDir Path dir) throws Exception {
        Path out = Files.createDirectories(dir.resolve(label));
        // NOTE: the model exported is the model compared: quantized once. Quantizing twice and
        // comparing failed now and then (an AWQ-folded ffn_norm weight, 0.6357129 vs 0.63571286):
        // the first run's forward passes ran partly before C2 and its lane sums came out in another
        // order. LaneSums fixed the cause; comparing the very model exported is still the test meant.
        try (Arena arena = Arena.ofShared(); LoadedModel source = ModelLoader.load(stories())) {
            LoadedModel expected = ModelQuantizer.quantizeForHf(source, options, null, arena, QUIET);
            // NOTE: a small shard limit: the 260K model is written as several shards with an index.
            HfExporter.Result export = HfExporter.write(expected, ModelQuantizer.hfPacking(options), options.actOrder(),
                    null, out, 200_000);
            assertEquals("written", export.tokenizer());
            assertTrue(Files.exists(out.resolve("model.safetensors.index.json")), "sharded");
            JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
            JsonNode qc = config.path("quantization_config");
            switch (options.method()) {
                case NF4 -> {
                    assertEquals("bitsandbytes", qc.path("quant_method").asText());
                    assertEquals(options.doubleQuant(), qc.path("bnb_4bit_use_double_quant").asBoolean());
                }
                case AWQ -> assertEquals("gemm", qc.path("version").asText());
                default -> {
                    assertEquals("gptq", qc.path("quant_method").asText());
                    assertEquals(options.bits(), qc.path("bits").asInt());
                    assertEquals(options.groupSize(), qc.path("group_size").asInt());
                    assertEquals(!options.zeroPoint(), qc.path("sym").asBoolean());
                    assertEquals(options.actOrder(), qc.path("desc_act").asBoolean());
                }
            }
            try (LoadedModel back = HfModelReader.read(out)) {
                int packed = assertSameTensors(expected, back);
                assertEquals(export.packed().size(), packed, "packed layers read back in their Lathe format");
                assertTrue(packed >= 20, label + ": " + packed + " packed layers");
                assertSameGeneration(expected, back);
            }
        }
    }

    /**
     * {@code lathe quantize --output-format hf}'s path (quantize, then write atomically): RTN, which
     * is deterministic, so a second in-memory quantization is the same model.
     */
    @Test
    void quantizeToHfWritesWhatTheInMemoryQuantizationHolds(@TempDir Path dir) throws Exception {
        QuantOptions options = new QuantOptions(QuantMethod.RTN, 4, 32, true, null, 0, 0, false);
        Path out = dir.resolve("rtn");
        ModelQuantizer.HfSummary summary = ModelQuantizer.quantizeToHf(stories(), out, options, null, null, false, 200_000, QUIET);
        assertEquals("written", summary.export().tokenizer());
        try (Arena arena = Arena.ofShared(); LoadedModel source = ModelLoader.load(stories());
             LoadedModel back = HfModelReader.read(out)) {
            LoadedModel expected = ModelQuantizer.quantizeForHf(source, options, null, arena, QUIET);
            assertEquals(summary.export().packed().size(), assertSameTensors(expected, back));
        }
    }

    /**
     * GPTQ act-order with a scattered {@code g_idx}: a model whose o_proj groups are sets of
     * non-adjacent inputs. Made from the GPTQ model by moving whole attention heads (Q heads 0,1
     * with 4,5; K/V heads 0 with 2), which leaves the function unchanged but makes o_proj's
     * contiguous groups scattered over its new input order.
     */
    @Test
    void actOrderWithAScatteredGroupIndexReadsBack(@TempDir Path dir) throws Exception {
        QuantOptions options = new QuantOptions(QuantMethod.GPTQ, 4, 32, true, calibration, 4, 32, false);
        try (Arena arena = Arena.ofShared(); LoadedModel source = ModelLoader.load(stories())) {
            LoadedModel gptq = ModelQuantizer.quantizeForHf(source, options, null, arena, QUIET);
            LoadedModel moved = swapHeads(gptq, arena);
            Path out = dir.resolve("scattered");
            Files.createDirectories(out);
            HfExporter.write(moved, HfExporter.Packing.GPTQ, false, null, out, HfExporter.DEFAULT_SHARD_BYTES);
            JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
            assertTrue(config.path("quantization_config").path("desc_act").asBoolean(), "scattered groups are desc_act");
            SafetensorsFile st = SafetensorsFile.open(out.resolve("model.safetensors"), arena);
            MemorySegment gIdx = st.tensors().get("model.layers.0.self_attn.o_proj.g_idx").data();
            ValueLayout.OfInt i32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            assertEquals(1, gIdx.getAtIndex(i32, 0), "input 0 now holds old head 4: group 1");
            assertEquals(0, gIdx.getAtIndex(i32, 32), "input 32 now holds old head 0: group 0");
            try (LoadedModel back = HfModelReader.read(out)) {
                assertEquals(LatheFormat.Kind.INT_GROUP_ACT_ORDER,
                        ((LatheFormat) back.tensor("blk.0.attn_output.weight").format()).kind());
                assertSameTensors(moved, back);
                assertSameGeneration(moved, back);
                assertSameGeneration(gptq, back); // moving heads changes no token
            }
        }
    }

    @Test
    void writtenTokenizerEncodesAsTheModelsOwn(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("nf4");
        ModelQuantizer.quantizeToHf(stories(), out, QuantOptions.of(QuantMethod.NF4), null, null, false,
                HfExporter.DEFAULT_SHARD_BYTES, QUIET);
        assertTrue(Files.exists(out.resolve("model.safetensors")), "one file under the shard limit");
        try (LoadedModel source = ModelLoader.load(stories()); LoadedModel back = HfModelReader.read(out)) {
            Tokenizer original = Tokenizers.create(source.vocabulary());
            Tokenizer written = Tokenizers.create(back.vocabulary());
            for (String text : new String[] {"Once upon a time, there was a little girl named Lily.", "  two  spaces\nand a newline",
                    "Unicode: caf\u00e9, \u00fcber, \u65e5\u672c, emoji \uD83D\uDE00", "", "Tim and Sue's big red ball!!! 12345"}) {
                assertArrayEquals(original.encode(text), written.encode(text), "'" + text + "'");
            }
            assertEquals(source.vocabulary().bosId(), back.vocabulary().bosId());
            assertEquals(source.vocabulary().eosId(), back.vocabulary().eosId());
        }
    }

    /** The same tensor names; every value of every tensor equal; packed layers in the same Lathe format. Returns their count. */
    private static int assertSameTensors(LoadedModel expected, LoadedModel back) {
        assertEquals(expected.tensors().keySet(), back.tensors().keySet());
        int sameFormat = 0;
        for (WeightMatrix e : expected.tensors().values()) {
            WeightMatrix b = back.tensor(e.name());
            assertEquals(e.rows(), b.rows(), e.name());
            assertEquals(e.cols(), b.cols(), e.name());
            float[] er = new float[e.cols()];
            float[] br = new float[b.cols()];
            for (int r = 0; r < e.rows(); r++) {
                e.dequantizeRow(r, er, 0);
                b.dequantizeRow(r, br, 0);
                assertArrayEquals(er, br, e.name() + " (" + e.format().name() + " -> " + b.format().name() + ") row " + r);
            }
            if (e.format() instanceof LatheFormat && e.format().equals(b.format())) {
                assertArrayEquals(e.data().toArray(ValueLayout.JAVA_BYTE), b.data().toArray(ValueLayout.JAVA_BYTE), e.name());
                sameFormat++;
            }
        }
        return sameFormat;
    }

    private static void assertSameGeneration(LoadedModel expected, LoadedModel back) {
        int[] a = new Generator(new LlamaModel(expected, new CpuBackend(1)), Tokenizers.create(expected.vocabulary()))
                .generate("Once upon a time", SamplingParams.greedy().withMaxNewTokens(TOKENS), t -> { }).tokens();
        int[] b = new Generator(new LlamaModel(back, new CpuBackend(1)), Tokenizers.create(back.vocabulary()))
                .generate("Once upon a time", SamplingParams.greedy().withMaxNewTokens(TOKENS), t -> { }).tokens();
        assertEquals(TOKENS, a.length);
        assertArrayEquals(a, b);
    }

    /** Q heads 0,1 <-> 4,5 and K/V heads 0 <-> 2 in every layer; o_proj becomes act-order over its new inputs. */
    private static LoadedModel swapHeads(LoadedModel model, Arena arena) {
        LlamaConfig c = model.config();
        assertEquals(8, c.heads());
        assertEquals(4, c.kvHeads());
        int d = c.headDim();
        int[] qHead = {4, 5, 2, 3, 0, 1, 6, 7};
        int[] kvHead = {2, 1, 0, 3};
        SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, WeightMatrix> e : model.tensors().entrySet()) {
            WeightMatrix w = e.getValue();
            String name = e.getKey();
            if (name.endsWith("attn_q.weight")) {
                w = moveRowBlocks(w, qHead, d, arena);
            } else if (name.endsWith("attn_k.weight") || name.endsWith("attn_v.weight")) {
                w = moveRowBlocks(w, kvHead, d, arena);
            } else if (name.endsWith("attn_output.weight")) {
                w = scatterInputs(w, qHead, d, arena);
            }
            tensors.put(name, w);
        }
        return new LoadedModel(model.source(), model.format(), c, tensors, model.vocabulary(), model.metadata(), model.arena());
    }

    /** New row block {@code h} (of {@code d} rows) is old block {@code from[h]}. */
    private static WeightMatrix moveRowBlocks(WeightMatrix w, int[] from, int d, Arena arena) {
        long rowBytes = w.rowBytes();
        MemorySegment data = arena.allocate(rowBytes * w.rows(), 8);
        for (int h = 0; h < from.length; h++) {
            MemorySegment.copy(w.data(), (long) from[h] * d * rowBytes, data, (long) h * d * rowBytes, d * rowBytes);
        }
        return WeightMatrices.of(w.name(), w.format(), w.rows(), w.cols(), data);
    }

    /**
     * The matrix reading input {@code (h, i)} where {@code w} read {@code (from[h], i)}: its groups
     * (over old inputs) are scattered over the new inputs. Stored in act-order form, columns
     * sorted by group and, within a group, by new input (the order a reader's stable sort of g_idx gives).
     */
    private static WeightMatrix scatterInputs(WeightMatrix w, int[] from, int d, Arena arena) {
        LatheFormat f = (LatheFormat) w.format();
        int cols = w.cols();
        int g = f.groupSize();
        int[] oldOf = new int[cols]; // new input -> old input
        for (int col = 0; col < cols; col++) {
            oldOf[col] = from[col / d] * d + col % d;
        }
        int[] order = new int[cols]; // stored column -> new input: by old group, then new input
        int next = 0;
        for (int group = 0; group < cols / g; group++) {
            for (int col = 0; col < cols; col++) {
                if (oldOf[col] / g == group) {
                    order[next++] = col;
                }
            }
        }
        LatheFormat act = LatheFormat.intGroupActOrder(f.bits(), g, f.zeroPoint());
        MemorySegment data = arena.allocate(act.matrixBytes(w.rows(), cols), 8);
        byte[] levels = new byte[cols];
        byte[] stored = new byte[cols];
        Grid[] grids = new Grid[cols / g];
        for (int r = 0; r < w.rows(); r++) {
            LatheEncoder.unpackIntGroupRow(w, r, levels, grids);
            for (int j = 0; j < cols; j++) {
                stored[j] = levels[oldOf[order[j]]];
            }
            LatheEncoder.packIntGroupRow(act, stored, grids, cols, data, r * act.rowBytes(cols));
        }
        LatheEncoder.packColumnOrder(act, order, w.rows(), cols, data);
        WeightMatrix scattered = WeightMatrices.of(w.name(), (WeightFormat) act, w.rows(), cols, data);
        assertNotEquals(w.format(), scattered.format());
        assertFalse(java.util.Arrays.equals(LatheEncoder.columnOrder(scattered), LatheEncoder.columnOrder(w)));
        return scattered;
    }
}
