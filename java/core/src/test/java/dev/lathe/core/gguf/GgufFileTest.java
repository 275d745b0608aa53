package dev.lathe.core.gguf;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufFileTest {

    @TempDir
    Path tmp;

    @Test
    void readsTheSharedStoriesModel() {
        Path path = SharedData.require("models/stories260K/stories260K-q4_0.gguf");
        try (GgufFile gguf = GgufFile.open(path)) {
            assertEquals(3, gguf.version());
            GgufMetadata md = gguf.metadata();
            assertEquals("llama", md.string("general.architecture"));
            assertEquals(64, md.integer("llama.embedding_length"));
            assertEquals(512, md.stringArray("tokenizer.ggml.tokens").size());
            GgufTensorInfo embd = gguf.tensor("token_embd.weight");
            assertEquals(GgmlType.Q4_0, embd.type());
            assertEquals("[512, 64]", embd.shapeString());
            assertEquals(512L * 64 / 32 * 18, embd.byteSize());
            assertEquals(0, (embd.fileOffset() - gguf.dataStart()) % gguf.alignment());
        }
    }

    @Test
    void readsVocabularyOnlyFilesThatEndWithoutPadding() {
        Path path = SharedData.require("tokenizers/ggml-vocab-gpt-2.gguf");
        try (GgufFile gguf = GgufFile.open(path)) {
            assertEquals(0, gguf.tensors().size());
            assertEquals(50000, gguf.metadata().stringArray("tokenizer.ggml.merges").size());
        }
    }

    @Test
    void writerRoundTripsEveryValueTypeAndTensorData() throws IOException {
        GgufWriter w = new GgufWriter();
        w.put("u8", GgufValue.of(GgufValueType.UINT8, 255L));
        w.put("i8", GgufValue.of(GgufValueType.INT8, -128L));
        w.put("u16", GgufValue.of(GgufValueType.UINT16, 65535L));
        w.put("i16", GgufValue.of(GgufValueType.INT16, -32768L));
        w.putUint32("u32", 0xFFFF_FFFFL);
        w.putInt32("i32", Integer.MIN_VALUE);
        w.put("u64", GgufValue.of(GgufValueType.UINT64, -1L));
        w.put("i64", GgufValue.of(GgufValueType.INT64, Long.MIN_VALUE));
        w.putFloat32("f32", 1.5e-5f);
        w.put("f64", GgufValue.of(GgufValueType.FLOAT64, Math.PI));
        w.putBool("bool", true);
        w.putString("str", "héllo ▁ 世界");
        w.putStringArray("strs", List.of("a", "", "ü"));
        w.putFloat32Array("floats", new float[] {1f, -2f, Float.MIN_VALUE});
        w.putInt32Array("ints", new int[] {3, -4});
        w.put("bools", GgufValue.array(GgufValueType.BOOL, new boolean[] {true, false}));
        w.put("nested", GgufValue.array(GgufValueType.ARRAY,
                List.of(GgufValue.array(GgufValueType.UINT8, new long[] {1, 2}))));
        w.putUint32("general.alignment", 64);
        w.addTensor("a", GgmlType.F32, new long[] {3, 5}, out -> {
            for (int i = 0; i < 15; i++) {
                out.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, i * 0.5f);
            }
        });
        w.addTensor("b", GgmlType.Q8_0, new long[] {2, 64}, out -> out.fill((byte) 7));
        Path path = tmp.resolve("roundtrip.gguf");
        w.write(path);

        try (GgufFile g = GgufFile.open(path)) {
            GgufMetadata md = g.metadata();
            assertEquals(255, md.integer("u8"));
            assertEquals(-128, md.integer("i8"));
            assertEquals(65535, md.integer("u16"));
            assertEquals(-32768, md.integer("i16"));
            assertEquals(0xFFFF_FFFFL, md.integer("u32"));
            assertEquals(Integer.MIN_VALUE, md.integer("i32"));
            assertEquals(-1L, md.integer("u64"));
            assertEquals(Long.MIN_VALUE, md.integer("i64"));
            assertEquals(1.5e-5f, md.optFloat("f32").orElseThrow());
            assertEquals((float) Math.PI, md.optFloat("f64").orElseThrow());
            assertTrue(md.optBool("bool", false));
            assertEquals("héllo ▁ 世界", md.string("str"));
            assertEquals(List.of("a", "", "ü"), md.stringArray("strs"));
            assertArrayEquals(new float[] {1f, -2f, Float.MIN_VALUE}, md.floatArray("floats"));
            assertArrayEquals(new int[] {3, -4}, md.intArray("ints"));
            assertEquals(2, md.raw("bools").length());
            assertEquals(1, md.raw("nested").length());
            assertEquals(64, g.alignment());
            assertEquals(0, g.dataStart() % 64);

            GgufTensorInfo a = g.tensor("a");
            assertEquals("[3, 5]", a.shapeString());
            MemorySegment data = g.data(a);
            for (int i = 0; i < 15; i++) {
                assertEquals(i * 0.5f, data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i));
            }
            GgufTensorInfo b = g.tensor("b");
            assertEquals(2 * 2 * 34, b.byteSize());
            assertEquals(0, (b.fileOffset() - g.dataStart()) % 64);
            assertEquals(7, g.data(b).get(ValueLayout.JAVA_BYTE, b.byteSize() - 1));
        }
    }

    @Test
    void typedAccessorsNameTheKeyOnMismatch() throws IOException {
        Path path = tmp.resolve("typed.gguf");
        new GgufWriter().putString("s", "x").putUint32("n", 5).write(path);
        try (GgufFile g = GgufFile.open(path)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> g.metadata().integer("s"));
            assertTrue(e.getMessage().contains("s should be an integer"), e.getMessage());
            e = assertThrows(ModelFormatException.class, () -> g.metadata().string("missing.key"));
            assertTrue(e.getMessage().contains("missing.key"), e.getMessage());
            e = assertThrows(ModelFormatException.class, () -> g.metadata().boundedInt("n", 6, 10));
            assertTrue(e.getMessage().contains("outside [6, 10]"), e.getMessage());
        }
    }

    // ---- bad input ----

    private static byte[] header(int magic, int version, long tensors, long kvs) {
        return ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(magic).putInt(version).putLong(tensors).putLong(kvs).array();
    }

    private static ModelFormatException rejects(byte[] bytes, String expectedFragment) {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> GgufFile.parse("bad.gguf", MemorySegment.ofArray(bytes)));
        assertTrue(e.getMessage().startsWith("bad.gguf"), e.getMessage());
        assertTrue(e.getMessage().contains(expectedFragment), "expected '" + expectedFragment + "' in: " + e.getMessage());
        return e;
    }

    @Test
    void rejectsWrongMagicVersionsAndTruncation() {
        rejects(new byte[10], "too short");
        rejects(header(0x12345678, 3, 0, 0), "not a GGUF file");
        rejects(header(GgufFile.MAGIC, 1, 0, 0), "unsupported GGUF version 1");
        rejects(header(GgufFile.MAGIC, 4, 0, 0), "unsupported GGUF version 4");
        rejects(header(GgufFile.MAGIC, Integer.reverseBytes(3), 0, 0), "big-endian");
        rejects(header(GgufFile.MAGIC, 3, 0, 1), "metadata entry count is 1");
    }

    @Test
    void rejectsAbsurdCountsWithoutAllocating() {
        rejects(header(GgufFile.MAGIC, 3, 1L << 40, 0), "tensor count is 1099511627776");
        rejects(header(GgufFile.MAGIC, 3, 0, -1L), "metadata entry count is 18446744073709551615");
        // A key whose string length is 2^62.
        byte[] hugeString = ByteBuffer.allocate(24 + 8 + 16).order(ByteOrder.LITTLE_ENDIAN)
                .put(header(GgufFile.MAGIC, 3, 0, 1)).putLong(1L << 62).array();
        rejects(hugeString, "has length 4611686018427387904");
        // An array claiming 2^40 uint8 elements.
        ByteBuffer array = ByteBuffer.allocate(24 + 9 + 4 + 4 + 8 + 8).order(ByteOrder.LITTLE_ENDIAN)
                .put(header(GgufFile.MAGIC, 3, 0, 1)).putLong(1).put((byte) 'k')
                .putInt(GgufValueType.ARRAY.id()).putInt(GgufValueType.UINT8.id()).putLong(1L << 40);
        rejects(array.array(), "length of array k is 1099511627776");
    }

    @Test
    void rejectsBadTensorInfos() throws IOException {
        Path good = tmp.resolve("good.gguf");
        new GgufWriter().addTensor("w", GgmlType.F32, new long[] {4, 8}, out -> out.fill((byte) 0)).write(good);
        byte[] bytes = Files.readAllBytes(good);
        int infoStart = 24 + 8 + 1; // header, name length, "w"
        // n_dims = 9
        byte[] dims = bytes.clone();
        ByteBuffer.wrap(dims).order(ByteOrder.LITTLE_ENDIAN).putInt(infoStart, 9);
        rejects(dims, "tensor w has 9 dimensions");
        // unknown type id 99 (after n_dims and two dims)
        byte[] type = bytes.clone();
        ByteBuffer.wrap(type).order(ByteOrder.LITTLE_ENDIAN).putInt(infoStart + 4 + 16, 99);
        rejects(type, "unknown ggml tensor type id 99");
        // offset beyond the end of the file
        byte[] offset = bytes.clone();
        ByteBuffer.wrap(offset).order(ByteOrder.LITTLE_ENDIAN).putLong(infoStart + 4 + 16 + 4, 1L << 20);
        rejects(offset, "occupies bytes");
        // misaligned offset
        ByteBuffer.wrap(offset).order(ByteOrder.LITTLE_ENDIAN).putLong(infoStart + 4 + 16 + 4, 3);
        rejects(offset, "not a non-negative multiple of the alignment");
        // dimension whose product overflows
        byte[] overflow = bytes.clone();
        ByteBuffer.wrap(overflow).order(ByteOrder.LITTLE_ENDIAN).putLong(infoStart + 4, 1L << 40).putLong(infoStart + 12, 1L << 40);
        rejects(overflow, "overflows 64 bits");
        // truncated data
        byte[] truncated = java.util.Arrays.copyOf(bytes, bytes.length - 1);
        rejects(truncated, "truncated");
        // a row that is not a whole number of blocks: Q8_0 with 8 columns
        byte[] q8 = bytes.clone();
        ByteBuffer.wrap(q8).order(ByteOrder.LITTLE_ENDIAN).putInt(infoStart + 4 + 16, GgmlType.Q8_0.id);
        rejects(q8, "not a whole number of Q8_0 blocks");
    }
}
