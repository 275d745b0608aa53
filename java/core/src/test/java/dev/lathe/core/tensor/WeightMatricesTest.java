package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.io.ModelFormatException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The factory refuses data that does not fit the declared type and shape, naming the tensor. */
class WeightMatricesTest {

    @Test
    void refusesASegmentOfTheWrongSize() {
        try (Arena arena = Arena.ofConfined()) {
            // [3, 64] Q8_0 = 3 rows * 2 blocks * 34 bytes = 204
            MemorySegment tooShort = arena.allocate(203);
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("blk.0.attn_q.weight", GgmlType.Q8_0, 3, 64, tooShort));
            assertTrue(e.getMessage().contains("blk.0.attn_q.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("204") && e.getMessage().contains("203"), e.getMessage());
            assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("w", GgmlType.Q8_0, 3, 64, arena.allocate(205)));
            assertEquals(204, WeightMatrices.of("w", GgmlType.Q8_0, 3, 64, arena.allocate(204)).byteSize());
        }
    }

    @Test
    void refusesColsThatAreNotWholeBlocks() {
        try (Arena arena = Arena.ofConfined()) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("output.weight", GgmlType.Q4_K, 1, 300, arena.allocate(144)));
            assertTrue(e.getMessage().contains("output.weight") && e.getMessage().contains("300"), e.getMessage());
            assertThrows(ModelFormatException.class,
                    () -> WeightMatrices.of("w", GgmlType.Q4_0, 1, 33, arena.allocate(36)));
        }
    }

    @Test
    void refusesUnsupportedTypesByName() {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> WeightMatrices.of("blk.3.ffn_down.weight", GgmlType.Q2_K, 1, 256, MemorySegment.NULL));
        assertTrue(e.getMessage().contains("tensor blk.3.ffn_down.weight has type Q2_K, which Lathe does not support yet"),
                e.getMessage());
    }

    @Test
    void refusesEmptyOrNegativeShapes() {
        assertThrows(ModelFormatException.class, () -> WeightMatrices.of("w", GgmlType.F32, 0, 4, MemorySegment.NULL));
        assertThrows(ModelFormatException.class, () -> WeightMatrices.of("w", GgmlType.F32, 4, -1, MemorySegment.NULL));
    }

    @Test
    void rejectsRowsAndInputsOutOfRange() {
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix m = WeightMatrices.of("w", GgmlType.Q8_0, 2, 32, arena.allocate(68));
            assertThrows(IndexOutOfBoundsException.class, () -> m.dot(2, new float[32], 0));
            assertThrows(IndexOutOfBoundsException.class, () -> m.dot(0, new float[32], 1));
            assertThrows(IndexOutOfBoundsException.class,
                    () -> m.dotRows(0, 2, new float[64], 32, 3, new float[6], 0, 2));
        }
    }
}
