package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The kernel layouts hold the same weights as the file: every value read back through the
 * kernels' reading of the layout ({@link WeightRepacker#valueAt}) equals the format's reference
 * decoding ({@link WeightMatrix#dequantizeRow}), exactly for the layouts that keep the bits, to
 * f16 rounding for the formats converted to F16. Runs on the CPU (CI).
 */
class WeightRepackerTest {
    private static final int[] ROWS = {1, 3, 17};

    private static WeightMatrix encoded(GgmlType type, int rows, int cols, Random random, Arena arena) {
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        MemorySegment data = WeightEncoder.encode(type, values, rows, cols, arena);
        return WeightMatrices.of("w", type, rows, cols, data);
    }

    private static void assertSameValues(WeightMatrix w, RepackedWeight p, double relTolerance) {
        float[] row = new float[w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            w.dequantizeRow(r, row, 0);
            for (int c = 0; c < w.cols(); c++) {
                float got = WeightRepacker.valueAt(p, r, c);
                double allowed = relTolerance * Math.abs(row[c]) + (relTolerance > 0 ? 1e-7 : 0);
                assertTrue(Math.abs(got - row[c]) <= allowed,
                        w.format().name() + " [" + r + ", " + c + "]: expected " + row[c] + ", got " + got + " (" + p.layout() + ")");
            }
        }
    }

    @Test
    void bitExactLayoutsReadBackTheFilesValues() {
        Random random = TestRandom.create("WeightRepackerTest.bitExact");
        for (GgmlType type : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0}) {
            for (int rows : ROWS) {
                for (int groups : new int[] {1, 3, 7}) {
                    int cols = 32 * groups;
                    try (Arena arena = Arena.ofConfined()) {
                        WeightMatrix w = encoded(type, rows == 1 ? 2 : rows, cols, random, arena);
                        RepackedWeight p = WeightRepacker.repack(w, arena);
                        assertEquals(type.name(), p.layout().name(), "layout of a " + type + " matrix");
                        assertEquals(p.layout().valuesBytes(w.rows(), cols), p.values().byteSize());
                        assertEquals(p.layout().scalesBytes(w.rows(), cols), p.layout().hasScales() ? p.scales().byteSize() : 0);
                        assertSameValues(w, p, 0);
                    }
                }
            }
        }
    }

    /** Random gaussian weights in {@code format}; for a 2:4 format two of every 4 are zeroed first, at random. */
    static WeightMatrix latheEncoded(LatheFormat format, int rows, int cols, Random random, Arena arena) {
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        if (format.isSparse24()) {
            for (int g = 0; g < values.length; g += 4) {
                int first = random.nextInt(4);
                int second = (first + 1 + random.nextInt(3)) % 4;
                values[g + first] = 0;
                values[g + second] = 0;
            }
        }
        return WeightMatrices.of("w", format, rows, cols, LatheEncoder.encode(format, values, rows, cols, arena));
    }

    /** Group-wise INT (2-4 bits, with and without zero points) and NF4 keep their exact values in the 4-bit kernel layouts. */
    @Test
    void latheFourBitFormatsKeepTheirValues() {
        Random random = TestRandom.create("WeightRepackerTest.lathe4bit");
        float[] row = new float[512];
        for (int bits = 2; bits <= 4; bits++) {
            for (boolean zeroPoint : new boolean[] {false, true}) {
                for (int group : new int[] {32, 64, 128}) {
                    try (Arena arena = Arena.ofConfined()) {
                        WeightMatrix w = latheEncoded(LatheFormat.intGroup(bits, group, zeroPoint), 3, 512, random, arena);
                        assertEquals(KernelLayout.INT4_GROUP, WeightRepacker.layoutFor(w));
                        Int4Weights k = Int4Weights.of(w);
                        for (int r = 0; r < 3; r++) {
                            w.dequantizeRow(r, row, 0);
                            for (int c = 0; c < 512; c++) {
                                assertEquals(row[c], k.value(r, c), w.format() + " [" + r + ", " + c + "]");
                            }
                        }
                    }
                }
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix w = latheEncoded(LatheFormat.nf4(64), 3, 512, random, arena);
            assertEquals(KernelLayout.NF4, WeightRepacker.layoutFor(w));
            Nf4Weights k = Nf4Weights.of(w);
            for (int r = 0; r < 3; r++) {
                w.dequantizeRow(r, row, 0);
                for (int c = 0; c < 512; c++) {
                    assertEquals(row[c], k.value(r, c), "NF4 [" + r + ", " + c + "]");
                }
            }
            // Group sizes the 4-bit kernels do not take go through F16.
            assertEquals(KernelLayout.F16, WeightRepacker.layoutFor(latheEncoded(LatheFormat.nf4(128), 2, 256, random, arena)));
            assertEquals(KernelLayout.F16,
                    WeightRepacker.layoutFor(latheEncoded(LatheFormat.intGroup(4, 256, true), 2, 512, random, arena)));
        }
    }

    /** 2:4 F16 model weights are the 2:4 kernel's layout as they are; 2:4 INT goes through F16. */
    @Test
    void sparse24F16IsTheKernelLayout() {
        Random random = TestRandom.create("WeightRepackerTest.sparse24");
        float[] row = new float[256];
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix w = latheEncoded(LatheFormat.sparse24F16(), 5, 256, random, arena);
            assertEquals(KernelLayout.SPARSE24, WeightRepacker.layoutFor(w));
            Sparse24Weights k = Sparse24Weights.of(w);
            for (int r = 0; r < 5; r++) {
                w.dequantizeRow(r, row, 0);
                for (int c = 0; c < 256; c++) {
                    assertEquals(row[c], k.value(r, c), "2:4 F16 [" + r + ", " + c + "]");
                }
            }
            WeightMatrix int4 = latheEncoded(LatheFormat.sparse24Int4(64, true), 3, 256, random, arena);
            RepackedWeight p = WeightRepacker.repack(int4, arena);
            assertEquals(KernelLayout.F16, p.layout());
            assertSameValues(int4, p, 0x1p-11);
        }
    }

    /** INT8 per channel becomes Q8_0 (its f32 row scale rounded to f16 once per row); odd widths go through F16. */
    @Test
    void int8PerChannelBecomesQ8_0() {
        Random random = TestRandom.create("WeightRepackerTest.int8");
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix w = latheEncoded(LatheFormat.int8Channel(), 5, 96, random, arena);
            RepackedWeight p = WeightRepacker.repack(w, arena);
            assertEquals(KernelLayout.Q8_0, p.layout());
            assertSameValues(w, p, 0x1p-11);
            WeightMatrix odd = latheEncoded(LatheFormat.int8Channel(), 3, 40, random, arena);
            RepackedWeight q = WeightRepacker.repack(odd, arena);
            assertEquals(KernelLayout.F16, q.layout());
            assertSameValues(odd, q, 0x1p-11);
        }
    }

    @Test
    void vectorsBecomeF32() {
        Random random = TestRandom.create("WeightRepackerTest.vectors");
        for (GgmlType type : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.Q8_0}) {
            try (Arena arena = Arena.ofConfined()) {
                WeightMatrix w = encoded(type, 1, 96, random, arena);
                RepackedWeight p = WeightRepacker.repack(w, arena);
                assertEquals(KernelLayout.F32, p.layout());
                assertSameValues(w, p, 0);
            }
        }
    }

    @Test
    void quantsAndScalesAreSplitInGgmlOrder() {
        // One Q4_0 block by hand: d = 0.5, qs[j] = j | (15 - j) << 4: value j = (j - 8) * d,
        // value j + 16 = (7 - j) * d.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(2 * 18);
            for (int r = 0; r < 2; r++) {
                block.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), r * 18L,
                        Float.floatToFloat16(0.5f * (r + 1)));
                for (int j = 0; j < 16; j++) {
                    block.set(ValueLayout.JAVA_BYTE, r * 18L + 2 + j, (byte) (j | (15 - j) << 4));
                }
            }
            WeightMatrix w = WeightMatrices.of("q4", GgmlType.Q4_0, 2, 32, block);
            RepackedWeight p = WeightRepacker.repack(w, arena);
            assertEquals(32, p.values().byteSize());
            assertEquals(4, p.scales().byteSize());
            for (int r = 0; r < 2; r++) {
                float d = 0.5f * (r + 1);
                for (int j = 0; j < 16; j++) {
                    assertEquals((j - 8) * d, WeightRepacker.valueAt(p, r, j));
                    assertEquals((7 - j) * d, WeightRepacker.valueAt(p, r, j + 16));
                    assertEquals((byte) (j | (15 - j) << 4), p.values().get(ValueLayout.JAVA_BYTE, r * 16L + j));
                }
            }
        }
    }

    /** Random blocks of {@code type} with sane f16 scale fields (random bits could be NaN or huge). */
    static WeightMatrix randomBlocks(GgmlType type, int rows, int cols, Random random, Arena arena) {
        long bytes = type.bytesFor(cols, "test") * rows;
        MemorySegment data = arena.allocate(bytes, 16);
        for (long i = 0; i < bytes; i++) {
            data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt(256));
        }
        int[] halves = switch (type) {
            case Q4_K, Q5_K, Q4_1, Q5_1 -> new int[] {0, 2};
            case Q6_K -> new int[] {208};
            default -> new int[] {0};
        };
        for (long b = 0; b < bytes / type.blockBytes; b++) {
            for (int h : halves) {
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), b * type.blockBytes + h,
                        Float.floatToFloat16((float) (random.nextDouble() * 0.1 + 0.01)));
            }
        }
        return WeightMatrices.of("k", type, rows, cols, data);
    }

    @Test
    void kQuantBlocksAreReadInPlace() {
        Random random = TestRandom.create("WeightRepackerTest.kQuantsInPlace");
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K}) {
            try (Arena arena = Arena.ofConfined()) {
                WeightMatrix w = randomBlocks(type, 3, 512, random, arena);
                RepackedWeight p = WeightRepacker.repack(w, arena);
                assertEquals(type.name(), p.layout().name());
                assertEquals(w.byteSize(), p.values().byteSize());
                // The kernels compute d * sc * q - dmin * m; the CPU (d * sc) * q - dmin * m: a rounding apart.
                assertSameValues(w, p, 1e-6);
            }
        }
    }

    @Test
    void otherFormatsBecomeF16WithinRounding() {
        Random random = TestRandom.create("WeightRepackerTest.toF16");
        for (GgmlType type : new GgmlType[] {GgmlType.Q5_0, GgmlType.Q4_1, GgmlType.Q5_1}) {
            try (Arena arena = Arena.ofConfined()) {
                WeightMatrix w = randomBlocks(type, 3, type.blockSize * 2, random, arena);
                RepackedWeight p = WeightRepacker.repack(w, arena);
                assertEquals(KernelLayout.F16, p.layout());
                // f16 keeps 11 significant bits: relative error at most 2^-11 (normal range).
                assertSameValues(w, p, 1.0 / 2048);
            }
        }
    }

    @Test
    void poolSizeClasses() {
        assertEquals(256, DeviceMemoryPool.sizeClass(1));
        assertEquals(256, DeviceMemoryPool.sizeClass(256));
        assertEquals(512, DeviceMemoryPool.sizeClass(257));
        assertEquals(1L << 20, DeviceMemoryPool.sizeClass((1L << 20) - 5));
        assertEquals(64L << 20, DeviceMemoryPool.sizeClass(64L << 20));
        assertEquals(65L << 20, DeviceMemoryPool.sizeClass((64L << 20) + 1));
    }
}
