package dev.lathe.core.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.TestRandom;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Lathe-format tensors stored in GGUF as I8 bytes plus metadata come back as the same matrices. */
class LatheTensorsInGgufTest {

    @Test
    void everyFormatRoundTripsThroughAGgufFile(@TempDir Path dir) {
        Random random = TestRandom.create("everyFormatRoundTripsThroughAGgufFile");
        LatheFormat[] formats = {LatheFormat.int8Channel(), LatheFormat.intGroup(4, 32, true),
            LatheFormat.intGroup(3, 128, false), LatheFormat.nf4(64), LatheFormat.nf4DoubleQuant(64)};
        int rows = 17;
        int cols = 384;
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        try (Arena arena = Arena.ofConfined()) {
            GgufWriter w = new GgufWriter();
            MemorySegment[] encoded = new MemorySegment[formats.length];
            for (int f = 0; f < formats.length; f++) {
                String name = "t" + f + ".weight";
                encoded[f] = LatheEncoder.encode(formats[f], values, rows, cols, arena);
                MemorySegment bytes = encoded[f];
                w.putString(GgufModelReader.LATHE_FORMAT_KEY + name, formats[f].spec());
                w.putUint32(GgufModelReader.LATHE_COLS_KEY + name, cols);
                w.addTensor(name, GgmlType.I8, new long[] {formats[f].storedRows(rows, cols), formats[f].rowBytes(cols)},
                        out -> out.copyFrom(bytes));
            }
            Path file = dir.resolve("lathe.gguf");
            w.write(file);
            try (GgufFile gguf = GgufFile.open(file)) {
                for (int f = 0; f < formats.length; f++) {
                    WeightMatrix m = GgufModelReader.matrix(gguf, gguf.tensor("t" + f + ".weight"));
                    assertEquals(formats[f], m.format());
                    assertEquals(rows, m.rows());
                    assertEquals(cols, m.cols());
                    assertArrayEquals(encoded[f].toArray(ValueLayout.JAVA_BYTE), m.data().toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
    }

    @Test
    void sparse24FormatsRoundTripThroughAGgufFile(@TempDir Path dir) {
        Random random = TestRandom.create("sparse24FormatsRoundTripThroughAGgufFile");
        LatheFormat[] formats = {LatheFormat.sparse24F16(), LatheFormat.sparse24Int4(128, true)};
        int rows = 17;
        int cols = 384;
        float[] values = new float[rows * cols];
        for (int g = 0; g < rows * cols / 4; g++) { // 2:4: two random columns of each group of 4
            int a = random.nextInt(4);
            values[4 * g + a] = (float) random.nextGaussian();
            values[4 * g + (a + 1 + random.nextInt(3)) % 4] = (float) random.nextGaussian();
        }
        try (Arena arena = Arena.ofConfined()) {
            GgufWriter w = new GgufWriter();
            MemorySegment[] encoded = new MemorySegment[formats.length];
            for (int f = 0; f < formats.length; f++) {
                String name = "t" + f + ".weight";
                encoded[f] = LatheEncoder.encode(formats[f], values, rows, cols, arena);
                MemorySegment bytes = encoded[f];
                w.putString(GgufModelReader.LATHE_FORMAT_KEY + name, formats[f].spec());
                w.putUint32(GgufModelReader.LATHE_COLS_KEY + name, cols);
                w.addTensor(name, GgmlType.I8, new long[] {rows, formats[f].rowBytes(cols)}, out -> out.copyFrom(bytes));
            }
            Path file = dir.resolve("sparse.gguf");
            w.write(file);
            try (GgufFile gguf = GgufFile.open(file)) {
                for (int f = 0; f < formats.length; f++) {
                    WeightMatrix m = GgufModelReader.matrix(gguf, gguf.tensor("t" + f + ".weight"));
                    assertEquals(formats[f], m.format());
                    assertEquals(cols, m.cols());
                    assertArrayEquals(encoded[f].toArray(ValueLayout.JAVA_BYTE), m.data().toArray(ValueLayout.JAVA_BYTE));
                    float[] row = new float[cols];
                    for (int r = 0; r < rows; r++) {
                        m.dequantizeRow(r, row, 0);
                        for (int i = 0; i < cols; i++) {
                            float v = values[r * cols + i];
                            if (v == 0) {
                                assertEquals(0f, row[i]);
                            } else if (f == 0) {
                                assertEquals(Float.float16ToFloat(Float.floatToFloat16(v)), row[i]);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void aFormatThatDisagreesWithTheStoredBytesIsAnError(@TempDir Path dir) {
        GgufWriter w = new GgufWriter();
        w.putString(GgufModelReader.LATHE_FORMAT_KEY + "t.weight", "int4:g32:zp");
        w.putUint32(GgufModelReader.LATHE_COLS_KEY + "t.weight", 64);
        w.addTensor("t.weight", GgmlType.I8, new long[] {2, 40}, out -> { }); // 64 INT4-g32 values take 38 bytes
        Path file = dir.resolve("bad.gguf");
        w.write(file);
        try (GgufFile gguf = GgufFile.open(file)) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> GgufModelReader.matrix(gguf, gguf.tensor("t.weight")));
            assertTrue(e.getMessage().contains("t.weight") && e.getMessage().contains("38"), e.getMessage());
        }
    }

    /** Double-quant NF4 needs its absmax table after the rows: one stored row of 64 values cannot hold both. */
    @Test
    void aDoubleQuantTensorWithoutRoomForItsTableIsAnError(@TempDir Path dir) {
        GgufWriter w = new GgufWriter();
        w.putString(GgufModelReader.LATHE_FORMAT_KEY + "t.weight", "nf4:g64:dq");
        w.putUint32(GgufModelReader.LATHE_COLS_KEY + "t.weight", 64);
        w.addTensor("t.weight", GgmlType.I8, new long[] {1, 33}, out -> { });
        Path file = dir.resolve("bad.gguf");
        w.write(file);
        try (GgufFile gguf = GgufFile.open(file)) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> GgufModelReader.matrix(gguf, gguf.tensor("t.weight")));
            assertTrue(e.getMessage().contains("t.weight") && e.getMessage().contains("NF4-g64-dq"), e.getMessage());
        }
    }
}
