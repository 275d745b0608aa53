package dev.lathe.tools.hf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.format.hf.AwqTensors;
import dev.lathe.core.format.hf.BnbNf4Tensors;
import dev.lathe.core.format.hf.GptqTensors;
import dev.lathe.core.format.hf.HfQuantization;
import dev.lathe.core.format.hf.SafetensorsFile;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.TestRandom;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GPTQ (int32-packed qweight / qzeros, scales, g_idx) and bitsandbytes NF4 safetensors packing round-trips. */
class HfPackingTest {
    static final java.lang.foreign.ValueLayout.OfInt I32 =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    static HfQuantization gptq(LatheFormat format) {
        return new HfQuantization(HfQuantization.Method.GPTQ, format.bits(), format.groupSize(), !format.zeroPoint(), false);
    }

    private static WeightMatrix random(Random random, LatheFormat format, int rows, int cols, Arena arena) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) random.nextGaussian() * 0.1f;
        }
        return WeightMatrices.of("m.weight", (WeightFormat) format, rows, cols, LatheEncoder.encode(format, v, rows, cols, arena));
    }

    private static void assertSameMatrix(WeightMatrix expected, WeightMatrix actual) {
        assertEquals(expected.format(), actual.format());
        assertEquals(expected.rows(), actual.rows());
        assertEquals(expected.cols(), actual.cols());
        assertArrayEquals(expected.data().toArray(ValueLayout.JAVA_BYTE), actual.data().toArray(ValueLayout.JAVA_BYTE));
    }

    @Test
    void gptqTensorsRoundTrip(@TempDir Path dir) {
        Random random = TestRandom.create("gptqTensorsRoundTrip");
        LatheFormat[] formats = {LatheFormat.intGroup(4, 32, true), LatheFormat.intGroup(4, 128, false), LatheFormat.intGroup(2, 64, false)};
        try (Arena arena = Arena.ofShared()) {
            for (LatheFormat format : formats) {
                WeightMatrix w = random(random, format, 48, 256, arena);
                SafetensorsWriter out = new SafetensorsWriter().metadata("format", "pt");
                GptqPacking.write(w, "model.layers.0.mlp.up_proj", out);
                Path file = dir.resolve(format.spec().replace(':', '_') + ".safetensors");
                out.write(file);
                SafetensorsFile st = SafetensorsFile.open(file, arena);
                assertEquals(4, st.tensors().size());
                WeightMatrix back = GptqTensors.read(st.tensors(), st.source(), "model.layers.0.mlp.up_proj", "m.weight", 48, 256,
                        gptq(format), arena);
                assertSameMatrix(w, back);
            }
        }
    }

    @Test
    void gptqQweightPacksEightNibblesPerWordAlongK(@TempDir Path dir) {
        LatheFormat format = LatheFormat.intGroup(4, 32, true);
        int rows = 8;
        int cols = 32;
        byte[] levels = new byte[cols];
        for (int i = 0; i < cols; i++) {
            levels[i] = (byte) (i % 16);
        }
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate(format.rowBytes(cols) * rows);
            for (int r = 0; r < rows; r++) {
                LatheEncoder.packIntGroupRow(format, levels, new Grid[] {new Grid(0.5f, 3 + r, 15)}, cols, data, r * format.rowBytes(cols));
            }
            WeightMatrix w = WeightMatrices.of("w", (WeightFormat) format, rows, cols, data);
            SafetensorsWriter out = new SafetensorsWriter();
            GptqPacking.write(w, "p", out);
            Path file = dir.resolve("p.safetensors");
            out.write(file);
            SafetensorsFile st = SafetensorsFile.open(file, arena);
            MemorySegment qweight = st.tensors().get("p.qweight").data();
            // Word 0 of every column holds levels 0..7 = 0x76543210; word 1 levels 8..15 = 0xFEDCBA98.
            assertEquals(0x76543210, qweight.getAtIndex(I32, 0));
            assertEquals(0xFEDCBA98, qweight.getAtIndex(I32, 8));
            // Zero points 3..10 stored minus one (2..9), eight per word along N: 0x98765432.
            assertEquals(0x98765432, st.tensors().get("p.qzeros").data().getAtIndex(I32, 0));
            assertEquals("[4, 8]", st.tensors().get("p.qweight").shapeString());
        }
    }

    @Test
    void awqTensorsRoundTripAndUseTheInterleavedOrder(@TempDir Path dir) {
        Random random = TestRandom.create("awqTensorsRoundTripAndUseTheInterleavedOrder");
        try (Arena arena = Arena.ofShared()) {
            WeightMatrix w = random(random, LatheFormat.intGroup(4, 64, true), 24, 128, arena);
            SafetensorsWriter out = new SafetensorsWriter();
            AwqPacking.write(w, "model.layers.0.self_attn.o_proj", out);
            Path file = dir.resolve("awq.safetensors");
            out.write(file);
            SafetensorsFile st = SafetensorsFile.open(file, arena);
            assertEquals("[128, 3]", st.tensors().get("model.layers.0.self_attn.o_proj.qweight").shapeString());
            assertSameMatrix(w, AwqTensors.read(st.tensors(), st.source(), "model.layers.0.self_attn.o_proj", "m.weight", 24, 128,
                    new HfQuantization(HfQuantization.Method.AWQ, 4, 64, false, false), arena));
            // Word 0 of input 0 holds outputs 0, 2, 4, 6, 1, 3, 5, 7 in nibbles 0..7.
            int word = st.tensors().get("model.layers.0.self_attn.o_proj.qweight").data().getAtIndex(I32, 0);
            byte[] levels = new byte[128];
            Grid[] grids = new Grid[2];
            for (int nibble = 0; nibble < 8; nibble++) {
                LatheEncoder.unpackIntGroupRow(w, AwqTensors.ORDER[nibble], levels, grids);
                assertEquals(levels[0], (word >>> (4 * nibble)) & 0xF, "nibble " + nibble);
            }
        }
    }

    @Test
    void quantizationConfigsNameTheirMethod() {
        assertEquals("gptq", QuantizationConfig.gptq(4, 128, false, false, null).get("quant_method").asText());
        assertEquals(128, QuantizationConfig.gptq(4, 128, false, false, null).get("group_size").asInt());
        assertEquals("gptq", QuantizationConfig.gptq(4, 128, false, false, null).get("checkpoint_format").asText());
        assertEquals("gemm", QuantizationConfig.awq(64, null).get("version").asText());
        assertEquals(64, QuantizationConfig.awq(64, null).get("q_group_size").asInt());
        assertEquals("nf4", QuantizationConfig.bitsandbytesNf4(true, null).get("bnb_4bit_quant_type").asText());
        assertTrue(QuantizationConfig.bitsandbytesNf4(true, null).get("bnb_4bit_use_double_quant").asBoolean());
    }

    @Test
    void nf4TensorsRoundTripInBitsandbytesLayout(@TempDir Path dir) {
        Random random = TestRandom.create("nf4TensorsRoundTripInBitsandbytesLayout");
        try (Arena arena = Arena.ofShared()) {
            WeightMatrix w = random(random, LatheFormat.nf4(64), 17, 192, arena);
            SafetensorsWriter out = new SafetensorsWriter();
            Nf4Packing.write(w, "model.layers.0.self_attn.q_proj", out);
            Path file = dir.resolve("nf4.safetensors");
            out.write(file);
            SafetensorsFile st = SafetensorsFile.open(file, arena);
            assertEquals("[1632, 1]", st.tensors().get("model.layers.0.self_attn.q_proj.weight").shapeString());
            WeightMatrix back = BnbNf4Tensors.read(st.tensors(), st.source(), "model.layers.0.self_attn.q_proj", "m.weight", 17, 192, arena);
            assertSameMatrix(w, back);
            // First byte: code of value 0 in the high nibble, value 1 in the low one.
            byte[] codes = new byte[192];
            LatheEncoder.unpackNf4Row(w, 0, codes, new float[3]);
            assertEquals((codes[0] << 4) | codes[1], st.tensors().get("model.layers.0.self_attn.q_proj.weight").data().get(ValueLayout.JAVA_BYTE, 0) & 0xFF);
        }
    }

    @Test
    void exportsThatTheFormatCannotHoldAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            WeightMatrix int3 = random(new Random(1), LatheFormat.intGroup(3, 32, true), 8, 64, arena);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GptqPacking.write(int3, "p", new SafetensorsWriter()));
            assertTrue(e.getMessage().contains("2 and 4 bits"), e.getMessage());
            WeightMatrix int8 = random(new Random(1), LatheFormat.int8Channel(), 8, 64, arena);
            assertThrows(IllegalArgumentException.class, () -> Nf4Packing.write(int8, "p", new SafetensorsWriter()));
        }
    }
}
