package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.kv.KvPoolSize;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The device KV pools' sizes and checks, without a GPU: bytes per dtype (the sink block counted),
 * block offsets for copy on write, the LATHE_KV_* codes against lathe.h, refusals that name the
 * problem (bad dimensions, overflow, a dtype with no CUDA kernels), and that a decode graph's
 * padding writes inside the sink block whatever the dtype.
 */
class KvPoolShapeTest {
    private static final int[] SUPPORTED_CODES = {0, 1, 2}; // F32, F16, BF16 by ordinal

    private static boolean supported(KvDtype d) {
        return d == KvDtype.F32 || d == KvDtype.F16 || d == KvDtype.BF16;
    }

    @Test
    void sizesFollowTheDtype() {
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16, KvDtype.BF16}) {
            KvPoolShape s = new KvPoolShape(2, 3, 5, 2, 17, dtype);
            long bytes = dtype == KvDtype.F32 ? 4 : 2;
            assertEquals(34, s.rowValues());
            assertEquals(4, s.deviceBlocks(), "the sink block is one more");
            assertEquals(20, s.slots());
            assertEquals(5 * 34 * bytes, s.blockBytes(), dtype.label());
            assertEquals(4 * 5 * 34 * bytes, s.poolBytes(), dtype.label());
            assertEquals(2 * 2 * 4 * 5 * 34 * bytes, s.byteSize(), dtype.label());
            // The same per-block bytes the engine budgets blocks with (java/core KvPoolSize).
            assertEquals(KvPoolSize.bytesPerBlock(2, 5, 2, 17, dtype) * s.deviceBlocks(), s.byteSize(), dtype.label());
            assertEquals(s.code(), KvPoolShape.code(dtype));
        }
        KvPoolShape f32 = new KvPoolShape(3, 7, 16, 4, 64, KvDtype.F32);
        for (KvDtype half : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
            KvPoolShape h = new KvPoolShape(3, 7, 16, 4, 64, half);
            assertEquals(f32.byteSize(), 2 * h.byteSize(), half + " pools are half the f32 bytes");
            assertEquals(f32.slots(), h.slots(), half + " pools hold the same slots");
        }
    }

    @Test
    void blockOffsetsTileThePool() {
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16, KvDtype.BF16}) {
            KvPoolShape s = new KvPoolShape(1, 6, 5, 3, 40, dtype);
            for (int b = 0; b < s.deviceBlocks(); b++) {
                assertEquals(b * s.blockBytes(), s.blockOffset(b));
            }
            int sink = s.numBlocks();
            assertEquals(s.poolBytes(), s.blockOffset(sink) + s.blockBytes(), "the sink block ends the pool");
            // Each block starts on its element size (the kernels' alignment check), from a 256-aligned pool.
            assertEquals(0, s.blockOffset(1) % (dtype == KvDtype.F32 ? 4 : 2));
            assertThrows(IllegalArgumentException.class, () -> s.blockOffset(-1));
            assertThrows(IllegalArgumentException.class, () -> s.blockOffset(s.deviceBlocks()));
        }
    }

    @Test
    void codesMatchTheHeader() throws IOException {
        Path header = Path.of(System.getProperty("lathe.header", "../../native/include/lathe.h"));
        if (!Files.isRegularFile(header)) {
            fail("lathe.h not found at " + header.toAbsolutePath() + " (set -Dlathe.header)");
        }
        String text = Files.readString(header);
        assertEquals(define(text, "LATHE_KV_F32"), KvPoolShape.KV_F32);
        assertEquals(define(text, "LATHE_KV_F16"), KvPoolShape.KV_F16);
        assertEquals(define(text, "LATHE_KV_BF16"), KvPoolShape.KV_BF16);
        assertEquals(KvPoolShape.KV_F32, KvPoolShape.code(KvDtype.F32));
        assertEquals(KvPoolShape.KV_F16, KvPoolShape.code(KvDtype.F16));
        assertEquals(KvPoolShape.KV_BF16, KvPoolShape.code(KvDtype.BF16));
    }

    private static int define(String header, String name) {
        Matcher m = Pattern.compile("#define\\s+" + name + "\\s+(-?\\d+)").matcher(header);
        assertTrue(m.find(), name + " is not defined in lathe.h");
        return Integer.parseInt(m.group(1));
    }

    /** Every KvDtype is either stored by the kernels or refused by name (int8 once java/core has it). */
    @Test
    void everyOtherDtypeIsRefusedByName() {
        for (KvDtype dtype : KvDtype.values()) {
            if (supported(dtype)) {
                assertEquals(SUPPORTED_CODES[dtype.ordinal()], KvPoolShape.code(dtype));
                continue;
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new KvPoolShape(1, 1, 1, 1, 1, dtype), dtype.label());
            assertTrue(e.getMessage().contains("--kv-dtype " + dtype.label()) && e.getMessage().contains("CUDA"),
                    e.getMessage());
        }
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                () -> new KvPoolShape(1, 1, 1, 1, 1, null));
        assertTrue(none.getMessage().contains("null"), none.getMessage());
    }

    @Test
    void badDimensionsAreRefused() {
        int[][] bad = {{0, 1, 1, 1, 1}, {1, 0, 1, 1, 1}, {1, 1, 0, 1, 1}, {1, 1, 1, 0, 1}, {1, 1, 1, 1, -3}};
        for (int[] d : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new KvPoolShape(d[0], d[1], d[2], d[3], d[4], KvDtype.F16));
            assertTrue(e.getMessage().contains("must be positive"), e.getMessage());
        }
        IllegalArgumentException huge = assertThrows(IllegalArgumentException.class,
                () -> new KvPoolShape(1 << 20, 1 << 20, 1 << 10, 1 << 10, 1 << 10, KvDtype.BF16));
        assertTrue(huge.getMessage().contains("bf16") && huge.getMessage().contains("2^63"), huge.getMessage());
    }

    /**
     * A decode graph's padding sequences write slot 0 of the sink block and read only it: for any
     * dtype that slot's row lies inside the pool and outside every real block.
     */
    @Test
    void decodeGraphPaddingStaysInTheSinkBlock() {
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16, KvDtype.BF16}) {
            KvPoolShape s = new KvPoolShape(2, 8, 16, 2, 24, dtype);
            PaddedDecodePlan padded = new PaddedDecodePlan(4, 64, 16, s.numBlocks());
            int[] table = {0, 1};
            padded.fill(new BatchPlan(new int[] {7}, new int[] {20}, new int[] {0, 1}, new int[] {20},
                    new int[] {0, 2}, table, new int[] {16 + 4}, new int[] {0}, 16));
            BatchPlan p = padded.plan;
            for (int seq = 1; seq < 4; seq++) {
                long slot = p.slotMapping()[seq];
                long rowBytes = s.rowValues() * dtype.bytes();
                assertEquals(s.blockOffset(s.numBlocks()), slot * rowBytes, dtype + ": padding writes the sink block");
                assertTrue(slot < s.slots() && (slot + 1) * rowBytes <= s.poolBytes(), dtype + ": inside the pool");
                for (int i = p.blockTableStart()[seq]; i < p.blockTableStart()[seq + 1]; i++) {
                    assertEquals(s.numBlocks(), p.blockTable()[i], dtype + ": padding reads only the sink block");
                }
            }
            // The real sequence's blocks it needs, then the sink block.
            assertEquals(0, p.blockTable()[0]);
            assertEquals(1, p.blockTable()[1]);
            assertEquals(s.numBlocks(), p.blockTable()[2]);
        }
    }
}
