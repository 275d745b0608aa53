package dev.lathe.core.format.hf;

import dev.lathe.core.format.hf.SafetensorsTestFiles.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;

import static dev.lathe.core.format.hf.HfModelReaderTest.assertProblem;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class SafetensorsFileTest {
    @TempDir
    Path dir;

    @Test
    void readsEntriesInHeaderOrderWithMetadata() throws Exception {
        var tensors = new LinkedHashMap<String, Tensor>();
        tensors.put("b", new Tensor("F16", new long[]{3}, new float[]{1, 2, 3}));
        tensors.put("a", new Tensor("F32", new long[]{2, 2}, new float[]{1, 2, 3, 4}));
        Path file = SafetensorsTestFiles.write(dir.resolve("x.safetensors"), tensors);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile st = SafetensorsFile.open(file, arena);
            assertEquals(java.util.List.of("b", "a"), java.util.List.copyOf(st.tensors().keySet()));
            assertEquals("pt", st.metadata().get("format"));
            assertArrayEquals(new long[]{2, 2}, st.tensors().get("a").shape());
            assertEquals(16, st.tensors().get("a").data().byteSize());
            assertEquals(6, st.tensors().get("b").data().byteSize());
        }
    }

    @Test
    void headerLengthOf2To62IsRefusedBeforeAnyAllocation() throws Exception {
        Path file = dir.resolve("huge.safetensors");
        Files.write(file, ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 62).array());
        assertProblem(() -> open(file), file, "header length 4611686018427387904 is outside [2, 56]");
    }

    @Test
    void headerLengthWithTheSignBitIsReadUnsigned() throws Exception {
        Path file = dir.resolve("signed.safetensors");
        Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array());
        assertProblem(() -> open(file), file, "header length 18446744073709551615 is outside");
    }

    @Test
    void shorterThanTheLengthField() throws Exception {
        Path file = Files.write(dir.resolve("short.safetensors"), new byte[]{1, 2, 3});
        assertProblem(() -> open(file), file, "truncated");
    }

    @Test
    void offsetsOutsideTheFile() throws Exception {
        Path file = SafetensorsTestFiles.writeRaw(dir.resolve("off.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}", new byte[16]);
        assertProblem(() -> open(file), file, "tensor 'w' data_offsets [0, 1000) are outside the 16 data bytes");
    }

    @Test
    void truncatedDataIsCaughtByTheOffsets() throws Exception {
        var tensors = new LinkedHashMap<String, Tensor>();
        tensors.put("w", new Tensor("F32", new long[]{4, 4}, new float[16]));
        Path whole = SafetensorsTestFiles.write(dir.resolve("whole.safetensors"), tensors);
        byte[] bytes = Files.readAllBytes(whole);
        Path cut = Files.write(dir.resolve("cut.safetensors"), java.util.Arrays.copyOf(bytes, bytes.length - 10));
        assertProblem(() -> open(cut), cut, "tensor 'w' data_offsets [0, 64) are outside the 54 data bytes");
    }

    @Test
    void reversedOffsets() throws Exception {
        Path file = SafetensorsTestFiles.writeRaw(dir.resolve("rev.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", new byte[16]);
        assertProblem(() -> open(file), file, "data_offsets [8, 4) are outside");
    }

    @Test
    void negativeOrMissingShapeAndOffsets() throws Exception {
        Path negative = SafetensorsTestFiles.writeRaw(dir.resolve("neg.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", new byte[16]);
        assertProblem(() -> open(negative), negative, "tensor 'w' shape should hold non-negative integers");
        Path noOffsets = SafetensorsTestFiles.writeRaw(dir.resolve("none.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", new byte[16]);
        assertProblem(() -> open(noOffsets), noOffsets, "tensor 'w' data_offsets should be an array of 2 integers");
    }

    @Test
    void byteCountMustMatchTheShape() throws Exception {
        Path file = SafetensorsTestFiles.writeRaw(dir.resolve("count.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", new byte[16]);
        assertProblem(() -> open(file), file, "F32 [2, 2] needs 16 bytes but data_offsets give 8");
    }

    @Test
    void hugeShapesOverflowCleanly() throws Exception {
        Path file = SafetensorsTestFiles.writeRaw(dir.resolve("overflow.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", new byte[16]);
        assertProblem(() -> open(file), file, "overflows");
    }

    @Test
    void headerThatIsNotJson() throws Exception {
        Path file = SafetensorsTestFiles.writeRaw(dir.resolve("json.safetensors"), "{\"w\": [", new byte[0]);
        assertProblem(() -> open(file), file, "safetensors header is not valid JSON");
    }

    @Test
    void unknownDtypeIsRefusedWhenUsedAsAWeight() throws Exception {
        Path file = SafetensorsTestFiles.writeRaw(dir.resolve("dtype.safetensors"),
                "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", new byte[4]);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile st = SafetensorsFile.open(file, arena);
            assertProblem(() -> st.tensors().get("w").ggmlType(st.source()), file,
                    "tensor 'w' has dtype F8_E4M3; Lathe reads F32, F16 and BF16");
        }
    }

    private static void open(Path file) {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile.open(file, arena);
        }
    }
}
