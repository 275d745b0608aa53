package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** The in-register conversions, exhaustively: every one of the 65536 16-bit patterns. */
class BlockLanesTest {
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static MemorySegment allPatterns(Arena arena) {
        MemorySegment all = arena.allocate(2 * 65536);
        for (int h = 0; h < 65536; h++) {
            all.set(HALF, 2L * h, (short) h);
        }
        return all;
    }

    /** The kernels run 16 lanes on AVX-512, else 8; -Dlathe.cpu.vectorBits=256 forces 8 (run the suite so to test them). */
    @Test
    void laneCountFollowsTheHardwareOrTheOverride() {
        boolean forced256 = Integer.getInteger("lathe.cpu.vectorBits", 512) < 512;
        int expected = FloatVector.SPECIES_PREFERRED.length() >= 16 && !forced256 ? 16 : 8;
        System.out.println("[lanes] BlockLanes.LANES = " + BlockLanes.LANES);
        assertEquals(expected, BlockLanes.LANES);
        assertEquals(BlockLanes.LANES, BlockLanes.BYTES.length());
        assertEquals(BlockLanes.LANES, BlockLanes.SHORTS.length());
        assertEquals(BlockLanes.LANES, BlockLanes.INTS.length());
    }

    @Test
    void halvesToFloatsMatchesFloat16ToFloatForEveryPattern() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = allPatterns(arena);
            float[] lanes = new float[BlockLanes.LANES];
            for (int h = 0; h < 65536; h += BlockLanes.LANES) {
                FloatVector v = BlockLanes.halvesToFloats(BlockLanes.loadShorts(all, 2L * h));
                v.intoArray(lanes, 0);
                for (int i = 0; i < lanes.length; i++) {
                    float expected = Float.float16ToFloat((short) (h + i));
                    // NaNs: any NaN will do (payloads are not part of the contract); others bit-exact
                    if (Float.isNaN(expected)) {
                        assertEquals(true, Float.isNaN(lanes[i]), "pattern " + Integer.toHexString(h + i));
                    } else {
                        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(lanes[i]),
                                "pattern 0x" + Integer.toHexString(h + i));
                    }
                }
            }
        }
    }

    @Test
    void bf16ToFloatsIsTheHighHalfForEveryPattern() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = allPatterns(arena);
            float[] lanes = new float[BlockLanes.LANES];
            for (int h = 0; h < 65536; h += BlockLanes.LANES) {
                BlockLanes.bf16ToFloats(BlockLanes.loadShorts(all, 2L * h)).intoArray(lanes, 0);
                for (int i = 0; i < lanes.length; i++) {
                    assertEquals((h + i) << 16, Float.floatToRawIntBits(lanes[i]), "pattern " + (h + i));
                }
            }
        }
    }
}
