package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lathe.core.testing.TestRandom;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Blocks built by hand from the field definitions in ggml-common.h (the GGUF block layouts):
 * the test chooses the quants and scales, packs them as the spec says, and checks the decoded
 * values against the spec's formula evaluated on the chosen numbers, so a decoder that agrees
 * with itself but not with ggml fails here. Scales are powers of two (exact in f16 and in the
 * products), so the comparison is exact.
 */
class SpecBlocksTest {

    private static ByteBuffer block(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static short f16(float v) {
        return Float.floatToFloat16(v);
    }

    /** Decodes {@code blocks} (one row) with the library and returns the values. */
    private static float[] decode(GgmlType type, int cols, ByteBuffer... blocks) {
        try (Arena arena = Arena.ofConfined()) {
            long size = 0;
            for (ByteBuffer b : blocks) {
                size += b.capacity();
            }
            MemorySegment data = arena.allocate(size);
            long at = 0;
            for (ByteBuffer b : blocks) {
                MemorySegment.copy(MemorySegment.ofArray(b.array()), 0, data, at, b.capacity());
                at += b.capacity();
            }
            WeightMatrix m = WeightMatrices.of("spec", type, 1, cols, data);
            float[] out = new float[cols];
            java.util.Arrays.fill(out, Float.NaN);
            m.dequantizeRow(0, out, 0);
            float[] onesX = new float[cols];
            java.util.Arrays.fill(onesX, 1f);
            double sum = 0;
            for (float v : out) {
                sum += v;
            }
            // the fast path must agree too: with x = 1 the dot is the sum of the values
            assertEquals(sum, m.dot(0, onesX, 0), 1e-5 * Math.max(1, sumAbs(out)), type + " dot with ones");
            return out;
        }
    }

    private static double sumAbs(float[] v) {
        double s = 0;
        for (float f : v) {
            s += Math.abs(f);
        }
        return s;
    }

    @Test
    void q8_0IsScaleTimesInt8() {
        // block_q8_0 { ggml_half d; int8_t qs[32]; }, y = d * qs
        ByteBuffer b = block(34).putShort(f16(0.5f));
        byte[] qs = new byte[32];
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            qs[j] = (byte) (j % 2 == 0 ? -128 + 9 * j : 127 - 5 * j);
            expected[j] = 0.5f * qs[j];
        }
        b.put(qs);
        assertArrayEquals(expected, decode(GgmlType.Q8_0, 32, b));
    }

    @Test
    void q4_0LowNibblesAreTheFirstHalf() {
        // block_q4_0 { ggml_half d; uint8_t qs[16]; }: y[j] = (qs[j] & 15) - 8, y[j+16] = (qs[j] >> 4) - 8, times d
        int[] q = new int[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (j * 7 + 3) % 16;
        }
        ByteBuffer b = block(18).putShort(f16(-0.25f));
        for (int j = 0; j < 16; j++) {
            b.put((byte) (q[j] | q[j + 16] << 4));
        }
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            expected[j] = (q[j] - 8) * -0.25f;
        }
        assertArrayEquals(expected, decode(GgmlType.Q4_0, 32, b));
    }

    @Test
    void q4_1AddsTheMin() {
        // block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }: y = q * d + m
        int[] q = new int[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (j * 5 + 1) % 16;
        }
        ByteBuffer b = block(20).putShort(f16(0.125f)).putShort(f16(-1.5f));
        for (int j = 0; j < 16; j++) {
            b.put((byte) (q[j] | q[j + 16] << 4));
        }
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            expected[j] = q[j] * 0.125f + -1.5f;
        }
        assertArrayEquals(expected, decode(GgmlType.Q4_1, 32, b));
    }

    /** The 32-bit qh field of Q5_0/Q5_1: bit j is bit 4 of value j. */
    private static int fifthBits(int[] q) {
        int qh = 0;
        for (int j = 0; j < 32; j++) {
            qh |= (q[j] >>> 4 & 1) << j;
        }
        return qh;
    }

    @Test
    void q5_0TakesTheFifthBitFromQh() {
        // block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }: y = (q - 16) * d
        int[] q = new int[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (j * 11 + 7) % 32;
        }
        ByteBuffer b = block(22).putShort(f16(2f)).putInt(fifthBits(q));
        for (int j = 0; j < 16; j++) {
            b.put((byte) ((q[j] & 15) | (q[j + 16] & 15) << 4));
        }
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            expected[j] = (q[j] - 16) * 2f;
        }
        assertArrayEquals(expected, decode(GgmlType.Q5_0, 32, b));
    }

    @Test
    void q5_1TakesTheFifthBitFromQhAndAddsTheMin() {
        // block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }: y = q * d + m
        int[] q = new int[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (j * 13 + 2) % 32;
        }
        ByteBuffer b = block(24).putShort(f16(0.25f)).putShort(f16(3f)).putInt(fifthBits(q));
        for (int j = 0; j < 16; j++) {
            b.put((byte) ((q[j] & 15) | (q[j + 16] & 15) << 4));
        }
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            expected[j] = q[j] * 0.25f + 3f;
        }
        assertArrayEquals(expected, decode(GgmlType.Q5_1, 32, b));
    }

    /**
     * The 12 scale bytes of Q4_K/Q5_K for 6-bit scales sc[8] and mins m[8], packed as ggml's
     * quantizer packs them: bytes 0..3 = sc[0..3] | (sc[4..7] >> 4) << 6, bytes 4..7 =
     * m[0..3] | (m[4..7] >> 4) << 6, bytes 8..11 = (sc[4..7] & 15) | (m[4..7] & 15) << 4.
     */
    private static byte[] packKScales(int[] sc, int[] m) {
        byte[] s = new byte[12];
        for (int j = 0; j < 4; j++) {
            s[j] = (byte) (sc[j] | (sc[j + 4] >>> 4) << 6);
            s[j + 4] = (byte) (m[j] | (m[j + 4] >>> 4) << 6);
            s[j + 8] = (byte) ((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
        }
        return s;
    }

    @Test
    void q4_kUsesSixBitScalesAndMinsPer32Values() {
        // block_q4_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; }
        // value i (sub-block s = i / 32) = d * sc[s] * q[i] - dmin * m[s]; qs chunk c (32 bytes)
        // holds values 64c + l (low nibbles) and 64c + 32 + l (high nibbles).
        Random random = TestRandom.create("q4_K spec block");
        int[] sc = new int[8];
        int[] m = new int[8];
        for (int s = 0; s < 8; s++) {
            sc[s] = random.nextInt(64);
            m[s] = random.nextInt(64);
        }
        sc[7] = 63; // the top bits of every packed field in use
        m[6] = 63;
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) {
            q[i] = random.nextInt(16);
        }
        float d = 0.0625f;
        float dmin = 0.5f;
        ByteBuffer b = block(144).putShort(f16(d)).putShort(f16(dmin)).put(packKScales(sc, m));
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                b.put((byte) (q[64 * c + l] | q[64 * c + 32 + l] << 4));
            }
        }
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) {
            expected[i] = d * sc[i / 32] * q[i] - dmin * m[i / 32];
        }
        assertArrayEquals(expected, decode(GgmlType.Q4_K, 256, b));
    }

    @Test
    void q5_kAddsTheFifthBitFromQh() {
        // block_q5_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
        // as Q4_K, q in 0..31; bit 4 of value 32s + l is bit s of qh[l].
        Random random = TestRandom.create("q5_K spec block");
        int[] sc = new int[8];
        int[] m = new int[8];
        for (int s = 0; s < 8; s++) {
            sc[s] = random.nextInt(64);
            m[s] = random.nextInt(64);
        }
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) {
            q[i] = random.nextInt(32);
        }
        float d = 0.125f;
        float dmin = 0.25f;
        ByteBuffer b = block(176).putShort(f16(d)).putShort(f16(dmin)).put(packKScales(sc, m));
        for (int l = 0; l < 32; l++) {
            int qh = 0;
            for (int s = 0; s < 8; s++) {
                qh |= (q[32 * s + l] >>> 4 & 1) << s;
            }
            b.put((byte) qh);
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                b.put((byte) ((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4));
            }
        }
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) {
            expected[i] = d * sc[i / 32] * q[i] - dmin * m[i / 32];
        }
        assertArrayEquals(expected, decode(GgmlType.Q5_K, 256, b));
    }

    @Test
    void q6_kUsesSignedScalesPer16Values() {
        // block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
        // value i = d * scales[i / 16] * (q[i] - 32), q in 0..63. For half h and l < 32, the values
        // 128h + l + 32k (k = 0..3) take their low 4 bits from: low nibble of ql[64h + l],
        // low nibble of ql[64h + 32 + l], high nibble of ql[64h + l], high nibble of ql[64h + 32 + l];
        // and their top 2 bits from bits 2k, 2k + 1 of qh[32h + l].
        Random random = TestRandom.create("q6_K spec block");
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) {
            q[i] = random.nextInt(64);
        }
        byte[] scales = new byte[16];
        for (int s = 0; s < 16; s++) {
            scales[s] = (byte) (random.nextInt(256) - 128);
        }
        scales[3] = -128;
        scales[4] = 127;
        byte[] ql = new byte[128];
        byte[] qh = new byte[64];
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int v0 = q[128 * h + l];
                int v1 = q[128 * h + 32 + l];
                int v2 = q[128 * h + 64 + l];
                int v3 = q[128 * h + 96 + l];
                ql[64 * h + l] = (byte) ((v0 & 15) | (v2 & 15) << 4);
                ql[64 * h + 32 + l] = (byte) ((v1 & 15) | (v3 & 15) << 4);
                qh[32 * h + l] = (byte) ((v0 >>> 4) | (v1 >>> 4) << 2 | (v2 >>> 4) << 4 | (v3 >>> 4) << 6);
            }
        }
        float d = 0.03125f;
        ByteBuffer b = block(210).put(ql).put(qh).put(scales).putShort(f16(d));
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) {
            expected[i] = d * scales[i / 16] * (q[i] - 32);
        }
        assertArrayEquals(expected, decode(GgmlType.Q6_K, 256, b));
    }

    @Test
    void q8_0BlocksFollowEachOtherWithTheirOwnScale() {
        ByteBuffer first = block(34).putShort(f16(1f));
        ByteBuffer second = block(34).putShort(f16(-4f));
        for (int j = 0; j < 32; j++) {
            first.put((byte) j);
            second.put((byte) -j);
        }
        float[] values = decode(GgmlType.Q8_0, 64, first, second);
        for (int j = 0; j < 32; j++) {
            assertEquals(j, values[j], 0f);
            assertEquals(4f * j, values[32 + j], 0f); // delta 0 lets -0 equal 0
        }
    }

    @Test
    void f16AndBf16DecodeSpecialValues() {
        // f16: 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (smallest subnormal), 0x7BFF = 65504, 0x7C00 = inf
        short[] f16 = {0x3C00, (short) 0xC000, 0x0001, 0x7BFF, 0x0000, (short) 0x8000, 0x03FF, 0x0400};
        float[] f16Expected = {1f, -2f, 0x1p-24f, 65504f, 0f, -0f, 0x3FFp-24f, 0x1p-14f};
        ByteBuffer b = block(2 * f16.length);
        for (short h : f16) {
            b.putShort(h);
        }
        assertArrayEquals(f16Expected, decode(GgmlType.F16, f16.length, b));
        // bf16: the high half of an f32
        short[] bf16 = {0x3F80, (short) 0xC040, 0x0001, 0x7F7F};
        float[] bf16Expected = {1f, -3f, Float.intBitsToFloat(0x00010000), Float.intBitsToFloat(0x7F7F0000)};
        ByteBuffer c = block(2 * bf16.length);
        for (short h : bf16) {
            c.putShort(h);
        }
        assertArrayEquals(bf16Expected, decode(GgmlType.BF16, bf16.length, c));
    }
}
