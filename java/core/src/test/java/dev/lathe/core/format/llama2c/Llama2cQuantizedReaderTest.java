package dev.lathe.core.format.llama2c;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static dev.lathe.core.format.llama2c.Llama2cCheckpointReaderTest.assertMessage;
import static dev.lathe.core.format.llama2c.Llama2cCheckpointReaderTest.assertShape;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Llama2cQuantizedReaderTest {
    static final String STORIES_Q80 = "models/stories260K/stories260K_q80.bin";

    @TempDir
    Path tmp;

    @Test
    void stories260KQ80HasTheReadmeHyperParameters() {
        try (LoadedModel model = Llama2cQuantizedReader.read(SharedData.require(STORIES_Q80))) {
            LlamaConfig c = model.config();
            assertEquals(List.of(64, 172, 5, 8, 4, 512, 512),
                    List.of(c.dim(), c.ffnDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), c.contextLength()));
            assertEquals(RopeStyle.INTERLEAVED, c.ropeStyle());
            assertTrue(c.tiedEmbeddings());
            assertNull(model.optionalTensor("output.weight"));
            assertEquals(1 + 5 * 9 + 1, model.tensors().size());
            assertEquals("token_embd.weight", model.tensors().firstEntry().getKey());
            // export.py backed the group off from 64 to 4 (hidden_dim 172), so the matrices load as exact f32.
            assertEquals(4, model.metadata().get("llama2c.group_size"));
            assertEquals(GgmlType.F32, model.tensor("blk.0.attn_q.weight").type());
            assertShape(model.tensor("blk.3.ffn_down.weight"), 64, 172);
        }
    }

    /**
     * The int8 model against the fp32 one it was exported from: each value within half a quantization
     * step of its group, which is at most half of (largest |w| in the row) / 127 since groups lie inside rows.
     */
    @Test
    void stories260KQ80IsWithinQ8ErrorOfTheFp32Weights() {
        try (LoadedModel q8 = Llama2cQuantizedReader.read(SharedData.require(STORIES_Q80));
             LoadedModel f32 = Llama2cCheckpointReader.read(SharedData.require(Llama2cCheckpointReaderTest.STORIES))) {
            for (String name : List.of("token_embd.weight", "blk.0.attn_q.weight", "blk.2.attn_v.weight",
                    "blk.4.attn_output.weight", "blk.1.ffn_gate.weight", "blk.3.ffn_down.weight", "blk.4.ffn_up.weight")) {
                WeightMatrix quantized = q8.tensor(name);
                WeightMatrix exact = f32.tensor(name);
                assertShape(quantized, exact.rows(), exact.cols());
                float[] qRow = new float[exact.cols()];
                float[] fRow = new float[exact.cols()];
                for (int r = 0; r < exact.rows(); r++) {
                    quantized.dequantizeRow(r, qRow, 0);
                    exact.dequantizeRow(r, fRow, 0);
                    float max = 0;
                    for (float v : fRow) {
                        max = Math.max(max, Math.abs(v));
                    }
                    float tolerance = 0.5f * max / 127f * 1.001f + 1e-7f;
                    for (int i = 0; i < fRow.length; i++) {
                        assertEquals(fRow[i], qRow[i], tolerance, name + "[" + r + "][" + i + "]");
                    }
                }
            }
            // The norms are stored as f32 in both files.
            float[] a = new float[64];
            float[] b = new float[64];
            q8.tensor("blk.4.ffn_norm.weight").dequantizeRow(0, a, 0);
            f32.tensor("blk.4.ffn_norm.weight").dequantizeRow(0, b, 0);
            assertEquals(java.util.Arrays.toString(b), java.util.Arrays.toString(a));
        }
    }

    /**
     * Group 64 with rows of whole 32-blocks repacks into Q8_0: every int8 kept, each group's scale
     * rounded to f16 and shared by its two blocks. Expected values come from the test's own quantizer.
     */
    @Test
    void groupsOf64RepackIntoQ8_0() throws Exception {
        Random random = TestRandom.create("groupsOf64RepackIntoQ8_0");
        var dims = new Llama2cTestFiles.Dims(64, 96, 2, 2, 1, 40, 16, false);
        java.util.Map<String, float[]> written = new java.util.HashMap<>();
        Path file = Llama2cTestFiles.writeVersion2(tmp.resolve("q80.bin"), dims, 64, (gguf, rows, cols) -> {
            float[] v = new float[rows * cols];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) random.nextGaussian() * (1 + i % 5);
            }
            written.put(gguf, v);
            return v;
        });
        try (LoadedModel model = Llama2cQuantizedReader.read(file)) {
            assertFalse(model.config().tiedEmbeddings());
            for (String name : List.of("token_embd.weight", "blk.1.attn_k.weight", "blk.0.ffn_down.weight", "output.weight")) {
                WeightMatrix w = model.tensor(name);
                assertEquals(GgmlType.Q8_0, w.type(), name);
                float[] values = written.get(name);
                float[] row = new float[w.cols()];
                for (int r = 0; r < w.rows(); r++) {
                    w.dequantizeRow(r, row, 0);
                    for (int i = 0; i < w.cols(); i++) {
                        int flat = r * w.cols() + i;
                        float scale = groupMax(values, flat / 64 * 64, 64) / 127f;
                        float q = Math.round(values[flat] / scale);
                        float expected = q * Float.float16ToFloat(Float.floatToFloat16(scale));
                        assertEquals(expected, row[i], Math.abs(expected) * 1e-6f, name + "[" + r + "][" + i + "]");
                    }
                }
            }
            assertEquals(GgmlType.F32, model.tensor("blk.1.attn_norm.weight").type());
            assertEquals(dims.layers() * 7 + 2, model.metadata().get("lathe.matrices_as_q8_0"));
        }
    }

    @Test
    void wrongMagicAndVersion() throws Exception {
        Path stories = SharedData.require(STORIES_Q80);
        Path badMagic = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("magic.bin"), 0, 0x12345678);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(badMagic)),
                badMagic, "magic 0x12345678");
        Path version3 = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("v3.bin"), 4, 3);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(version3)),
                version3, "version 3 is not supported");
    }

    @Test
    void badGroupSizes() throws Exception {
        Path stories = SharedData.require(STORIES_Q80);
        for (int group : new int[]{0, -64, 3, Integer.MAX_VALUE}) {
            Path file = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("group.bin"), 37, group);
            var e = assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(file), "group " + group);
            assertMessage(e, file, group <= 0 ? "group_size " + group + " is not positive" : "groups of " + group);
        }
        // 8 divides every matrix but the file was written with groups of 4: the size no longer matches.
        Path eight = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("group8.bin"), 37, 8);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(eight)),
                eight, "group_size 8 implies");
    }

    @Test
    void truncatedAndHostile() throws Exception {
        Path stories = SharedData.require(STORIES_Q80);
        Path cut = Llama2cTestFiles.truncatedCopy(stories, tmp.resolve("cut.bin"), 300_000);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(cut)),
                cut, "but the file has 300000");
        Path headerOnly = Llama2cTestFiles.truncatedCopy(stories, tmp.resolve("head.bin"), 20);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(headerOnly)),
                headerOnly, "truncated");
        Path huge = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("huge.bin"), 8 + 20, Integer.MAX_VALUE);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(huge)),
                huge, "vocabulary size 2147483647");
        Path negative = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("neg.bin"), 8 + 4, -172);
        assertMessage(assertThrows(ModelFormatException.class, () -> Llama2cQuantizedReader.read(negative)),
                negative, "feed-forward length -172");
    }

    private static float groupMax(float[] values, int start, int length) {
        float max = 0;
        for (int i = start; i < start + length; i++) {
            max = Math.max(max, Math.abs(values[i]));
        }
        return max;
    }
}
