package dev.lathe.core.format.llama2c;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Llama2cCheckpointReaderTest {
    static final String STORIES = "models/stories260K/stories260K.bin";

    @TempDir
    Path tmp;

    @Test
    void stories260KHasTheReadmeHyperParameters() {
        try (LoadedModel model = Llama2cCheckpointReader.read(SharedData.require(STORIES))) {
            LlamaConfig c = model.config();
            assertEquals(64, c.dim());
            assertEquals(172, c.ffnDim());
            assertEquals(5, c.layers());
            assertEquals(8, c.heads());
            assertEquals(4, c.kvHeads());
            assertEquals(8, c.headDim());
            assertEquals(512, c.vocabSize());
            assertEquals(512, c.contextLength());
            assertEquals(RopeStyle.INTERLEAVED, c.ropeStyle());
            assertEquals(1e-5f, c.rmsNormEps());
            assertEquals(10000f, c.ropeTheta());
            assertTrue(c.tiedEmbeddings());
            assertNull(model.optionalTensor("output.weight"));
            assertEquals(1 + 5 * 9 + 1, model.tensors().size());
            assertEquals("token_embd.weight", model.tensors().firstEntry().getKey());
            assertShape(model.tensor("blk.4.attn_k.weight"), 32, 64);
            assertShape(model.tensor("blk.4.ffn_down.weight"), 64, 172);
            assertShape(model.tensor("blk.0.attn_norm.weight"), 1, 64);
            assertEquals(GgmlType.F32, model.tensor("blk.2.ffn_up.weight").type());
            assertNull(model.vocabulary());
        }
    }

    @Test
    void stories260KWeightsAreTheFileBytes() throws Exception {
        Path file = SharedData.require(STORIES);
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        try (LoadedModel model = Llama2cCheckpointReader.read(file)) {
            float[] row = new float[64];
            model.tensor("token_embd.weight").dequantizeRow(3, row, 0);
            for (int i = 0; i < 64; i++) {
                assertEquals(bytes.getFloat(28 + 4 * (3 * 64 + i)), row[i], "token_embd[3][" + i + "]");
            }
            // rms_att of layer 0 follows the 512 x 64 embedding.
            model.tensor("blk.0.attn_norm.weight").dequantizeRow(0, row, 0);
            assertEquals(bytes.getFloat(28 + 4 * 512 * 64), row[0]);
        }
    }

    @Test
    void everyTensorGetsItsNameInExportOrder() throws Exception {
        // Separate classifier, ffn wider than dim, GQA: each tensor is filled with its own index.
        var dims = new Llama2cTestFiles.Dims(16, 24, 2, 4, 2, 11, 7, false);
        List<String> names = new java.util.ArrayList<>();
        List<Llama2cTestFiles.Tensor> order = Llama2cTestFiles.legacyOrder(dims, (gguf, rows, cols) -> {
            names.add(gguf);
            float[] v = new float[rows * cols];
            for (int i = 0; i < v.length; i++) {
                v[i] = names.size() + i / 1024f;
            }
            return v;
        });
        Path file = Llama2cTestFiles.writeLegacy(tmp.resolve("tiny.bin"), dims, order);
        try (LoadedModel model = Llama2cCheckpointReader.read(file)) {
            assertFalse(model.config().tiedEmbeddings());
            for (Llama2cTestFiles.Tensor t : order) {
                if (t.gguf() == null) {
                    continue;
                }
                WeightMatrix w = model.tensor(t.gguf());
                assertShape(w, t.rows(), t.cols());
                float[] last = new float[t.cols()];
                w.dequantizeRow(t.rows() - 1, last, 0);
                assertEquals(t.values()[t.values().length - 1], last[t.cols() - 1], t.gguf());
            }
            assertEquals(names.size(), model.tensors().size());
        }
    }

    @Test
    void truncatedFileNamesTheSizes() throws Exception {
        Path file = Llama2cTestFiles.truncatedCopy(SharedData.require(STORIES), tmp.resolve("cut.bin"), 1_000_000);
        var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpointReader.read(file));
        assertMessage(e, file, "implies 1056540 bytes but the file has 1000000");
    }

    @Test
    void shorterThanTheHeader() throws Exception {
        Path file = Llama2cTestFiles.truncatedCopy(SharedData.require(STORIES), tmp.resolve("tiny.bin"), 10);
        var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpointReader.read(file));
        assertMessage(e, file, "truncated");
    }

    @Test
    void hostileHeadersAreRefusedBeforeAnyArithmetic() throws Exception {
        Path stories = SharedData.require(STORIES);
        record Case(int offset, int value, String expected) {
        }
        for (Case c : List.of(
                new Case(0, Integer.MAX_VALUE, "embedding length 2147483647"),
                new Case(4, Integer.MAX_VALUE, "feed-forward length 2147483647"),
                new Case(8, -1, "block count -1"),
                new Case(12, 0, "head count 0"),
                new Case(12, 24, "dim 64 is not a multiple of n_heads 24"),
                new Case(16, 3, "not a multiple of KV head count 3"),
                new Case(20, Integer.MIN_VALUE, "vocab_size -2147483648"),
                new Case(24, -5, "context length -5"))) {
            Path file = Llama2cTestFiles.patchedCopy(stories, tmp.resolve("hostile.bin"), c.offset, c.value);
            var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpointReader.read(file), c.expected);
            assertMessage(e, file, c.expected);
        }
    }

    @Test
    void aNegativeVocabularyMeansASeparateClassifierTheFileLacks() throws Exception {
        Path file = Llama2cTestFiles.patchedCopy(SharedData.require(STORIES), tmp.resolve("untied.bin"), 20, -512);
        var e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpointReader.read(file));
        assertMessage(e, file, "but the file has 1056540");
    }

    static void assertShape(WeightMatrix w, int rows, int cols) {
        assertEquals(rows, w.rows(), w.name() + " rows");
        assertEquals(cols, w.cols(), w.name() + " cols");
    }

    static void assertMessage(ModelFormatException e, Path file, String fragment) {
        assertTrue(e.getMessage().contains(file.toString()), "names the file: " + e.getMessage());
        assertTrue(e.getMessage().contains(fragment), "says '" + fragment + "': " + e.getMessage());
    }
}
