package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Quantize (or encode), then decode with the format's reference decoder: the error stays within the format's bound. */
class WeightEncoderTest {
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static float[] randomRows(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            // a spread of magnitudes per block, as real weights have
            v[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(4) - 2));
        }
        v[5] = 0; // an exact zero
        return v;
    }

    private static float[] roundTrip(GgmlType type, float[] values, int rows, int cols, Arena arena, MemorySegment[] encoded) {
        MemorySegment data = WeightEncoder.encode(type, values, rows, cols, arena);
        encoded[0] = data;
        WeightMatrix m = WeightMatrices.of("round trip", type, rows, cols, data);
        float[] out = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            m.dequantizeRow(r, out, r * cols);
        }
        return out;
    }

    @Test
    void q8_0ErrorIsAtMostHalfAStep() {
        Random random = TestRandom.create("q8_0 round trip");
        int rows = 3;
        int cols = 32 * 17;
        float[] values = randomRows(random, rows * cols);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment[] data = new MemorySegment[1];
            float[] decoded = roundTrip(GgmlType.Q8_0, values, rows, cols, arena, data);
            for (int b = 0; b < rows * cols / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(values[32 * b + j]));
                }
                float d = amax / 127; // the step the quants were rounded with
                float stored = Float.float16ToFloat(data[0].get(HALF, 34L * b));
                assertEquals(Float.floatToFloat16(d), Float.floatToFloat16(stored), "block " + b + " scale");
                // rounding to the nearest step costs d/2; storing d as f16 moves each of up to 127
                // steps by |d - stored|
                double bound = d / 2 + 127 * Math.abs(d - stored) + 1e-6 * amax;
                for (int j = 0; j < 32; j++) {
                    int i = 32 * b + j;
                    assertTrue(Math.abs(values[i] - decoded[i]) <= bound,
                            "element " + i + ": " + values[i] + " -> " + decoded[i] + ", bound " + bound);
                }
            }
        }
    }

    @Test
    void q4_0ErrorIsAtMostHalfAStep() {
        Random random = TestRandom.create("q4_0 round trip");
        int rows = 2;
        int cols = 32 * 5;
        float[] values = randomRows(random, rows * cols);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment[] data = new MemorySegment[1];
            float[] decoded = roundTrip(GgmlType.Q4_0, values, rows, cols, arena, data);
            for (int b = 0; b < rows * cols / 32; b++) {
                float max = 0;
                for (int j = 0; j < 32; j++) {
                    if (Math.abs(values[32 * b + j]) > Math.abs(max)) {
                        max = values[32 * b + j];
                    }
                }
                float signedD = max / -8;
                float d = Math.abs(signedD);
                float stored = Math.abs(Float.float16ToFloat(data[0].get(HALF, 18L * b)));
                // the largest value maps to q = 0; others round to the nearest of 16 steps (half a
                // step), except values of the other sign beyond 7.5 steps, which clamp at q = 15
                // (x / d <= 8, so at most a full step); f16 storage of d moves up to 8 steps
                double storage = 8 * Math.abs(d - stored) + 1e-6 * Math.abs(max);
                for (int j = 0; j < 32; j++) {
                    int i = 32 * b + j;
                    boolean clamped = values[i] / signedD + 8.5f >= 16;
                    double bound = (clamped ? d : d / 2) + storage;
                    assertTrue(Math.abs(values[i] - decoded[i]) <= bound,
                            "element " + i + ": " + values[i] + " -> " + decoded[i] + ", bound " + bound);
                }
            }
        }
    }

    @Test
    void q8_0MatchesTheReferenceAlgorithmOnAHandBlock() {
        // amax = 127 -> d = 1, q = round(x) with ties away from zero (C roundf)
        float[] values = new float[32];
        values[0] = 127f;
        values[1] = -2.5f;
        values[2] = 2.5f;
        values[3] = -0.4f;
        values[4] = 3.49f;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = WeightEncoder.encode(GgmlType.Q8_0, values, 1, 32, arena);
            assertEquals(Float.floatToFloat16(1f), data.get(HALF, 0));
            byte[] expected = {127, -3, 3, 0, 3};
            for (int j = 0; j < expected.length; j++) {
                assertEquals(expected[j], data.get(ValueLayout.JAVA_BYTE, 2 + j), "q[" + j + "]");
            }
        }
    }

    @Test
    void q4_0MatchesTheReferenceAlgorithmOnAHandBlock() {
        // max = -8 (largest magnitude, negative) -> d = 1, q = min(15, (int) (x + 8.5))
        float[] values = new float[32];
        values[0] = -8f;
        values[1] = 7.9f;   // 16.4 -> 16 -> clamped to 15
        values[16] = 0.5f;  // 9.0 -> 9
        values[17] = -0.6f; // 7.9 -> 7
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = WeightEncoder.encode(GgmlType.Q4_0, values, 1, 32, arena);
            assertEquals(Float.floatToFloat16(1f), data.get(HALF, 0));
            assertEquals((byte) (0 | 9 << 4), data.get(ValueLayout.JAVA_BYTE, 2));
            assertEquals((byte) (15 | 7 << 4), data.get(ValueLayout.JAVA_BYTE, 3));
            assertEquals((byte) (8 | 8 << 4), data.get(ValueLayout.JAVA_BYTE, 4)); // zeros -> q = 8
        }
    }

    @Test
    void allZeroBlocksQuantizeToZero() {
        try (Arena arena = Arena.ofConfined()) {
            for (GgmlType type : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0}) {
                MemorySegment data = WeightEncoder.encode(type, new float[32], 1, 32, arena);
                float[] out = new float[32];
                WeightMatrices.of("zeros", type, 1, 32, data).dequantizeRow(0, out, 0);
                for (float v : out) {
                    assertEquals(0f, v, 0f, type.toString());
                }
            }
        }
    }

    @Test
    void f16EncodingIsFloatToFloat16AndBf16RoundsToNearestEven() {
        Random random = TestRandom.create("f16/bf16 encode");
        int n = 769;
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = RandomWeights.interestingFloat(random) * (float) Math.pow(2, random.nextInt(40) - 20);
        }
        values[0] = Float.POSITIVE_INFINITY;
        values[1] = 70000f; // overflows f16 -> inf
        values[2] = Float.intBitsToFloat(0x3F808000); // bf16 tie, even below -> 0x3F80
        values[3] = Float.intBitsToFloat(0x3F818000); // bf16 tie, odd below -> 0x3F82
        values[4] = Float.intBitsToFloat(0x3F808001); // above the tie -> 0x3F81
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f16 = WeightEncoder.encode(GgmlType.F16, values, 1, n, arena);
            MemorySegment bf16 = WeightEncoder.encode(GgmlType.BF16, values, 1, n, arena);
            MemorySegment f32 = WeightEncoder.encode(GgmlType.F32, values, 1, n, arena);
            float[] f32Back = new float[n];
            WeightMatrices.of("f32", GgmlType.F32, 1, n, f32).dequantizeRow(0, f32Back, 0);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToFloat16(values[i]), f16.get(HALF, 2L * i), "f16 of " + values[i]);
                assertEquals(Float.floatToRawIntBits(values[i]), Float.floatToRawIntBits(f32Back[i]), "f32 of " + values[i]);
                // bf16 round to nearest: at most half a unit in the last of its 8 significand bits
                float back = Float.intBitsToFloat(bf16.get(HALF, 2L * i) << 16);
                if (Float.isFinite(values[i])) {
                    assertTrue(Math.abs(back - values[i]) <= Math.ulp(back) * 0x1p15f, "bf16 of " + values[i]);
                }
            }
            assertEquals((short) 0x3F80, bf16.get(HALF, 4));
            assertEquals((short) 0x3F82, bf16.get(HALF, 6));
            assertEquals((short) 0x3F81, bf16.get(HALF, 8));
            assertEquals((short) 0x7F80, bf16.get(HALF, 0));
            assertTrue(Float.isNaN(Float.intBitsToFloat(Bf16Matrix.toBf16(Float.NaN) << 16)));
        }
    }

    @Test
    void refusesTypesItCannotWrite() {
        assertFalse(WeightEncoder.canEncode(GgmlType.Q4_K));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WeightEncoder.encodeRow(GgmlType.Q6_K, new float[256], 0, 256, MemorySegment.NULL, 0));
        assertTrue(e.getMessage().contains("Q6_K"), e.getMessage());
        try (Arena arena = Arena.ofConfined()) {
            IllegalArgumentException partial = assertThrows(IllegalArgumentException.class,
                    () -> WeightEncoder.encode(GgmlType.Q8_0, new float[40], 1, 40, arena));
            assertTrue(partial.getMessage().contains("40"), partial.getMessage());
        }
    }
}
