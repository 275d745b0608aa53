package dev.lathe.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.testing.TestRandom;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The reorder for mma.sp on the CPU: a model of what the hardware reads, written from the PTX ISA's
 * description of the sparse m16n8k32 f16 operands independently of {@link Sparse24MmaLayout}, must
 * rebuild every weight of the 2:4 matrix (and zeros in the padded rows), with every group's two
 * indices distinct and ascending.
 *
 * <p>The model: lane {@code L = 4g + t} holds registers {row g, kept 2t, 2t+1}, {row g+8, same},
 * {row g, kept 2t+8, 2t+9}, {row g+8, same} (the dense m16n8k16 A fragment over the compressed
 * 16 x 16 tile); with sparsity selector 0 the metadata of row {@code R} is bits {@code 16 (R / 8)}
 * .. +15 of the registers of lanes {@code 4 (R % 8)} (kept values 0-7) and {@code 4 (R % 8) + 1}
 * (kept values 8-15); kept value {@code k}'s two bits name its column in group {@code k / 2}.
 * NOTE: only a GPU run (CudaParityTest.sparse24TensorCores) proves this model is the hardware's.
 */
class Sparse24MmaLayoutTest {

    // The dense weight the hardware would see for tile rt, chunk c: [16][32].
    private static float[][] hardwareView(Sparse24MmaLayout m, int rt, int c) {
        int chunks = m.cols() / 32;
        int base = rt * chunks + c;
        float[][] compressed = new float[16][16];
        for (int lane = 0; lane < 32; lane++) {
            int g = lane / 4;
            int t = lane % 4;
            int[] regs = new int[4];
            for (int i = 0; i < 4; i++) {
                regs[i] = m.fragments()[(base * 32 + lane) * 4 + i];
            }
            int[][] where = {{g, 2 * t}, {g + 8, 2 * t}, {g, 2 * t + 8}, {g + 8, 2 * t + 8}};
            for (int i = 0; i < 4; i++) {
                compressed[where[i][0]][where[i][1]] = Float.float16ToFloat((short) regs[i]);
                compressed[where[i][0]][where[i][1] + 1] = Float.float16ToFloat((short) (regs[i] >>> 16));
            }
        }
        float[][] dense = new float[16][32];
        for (int row = 0; row < 16; row++) {
            int g = row % 8;
            int shift = 16 * (row / 8);
            int lowLane = (m.meta()[base * 16 + 2 * g] >>> shift) & 0xFFFF;   // lane 4g + 0
            int highLane = (m.meta()[base * 16 + 2 * g + 1] >>> shift) & 0xFFFF; // lane 4g + 1
            int rowMeta = lowLane | highLane << 16;
            for (int group = 0; group < 8; group++) {
                int i0 = (rowMeta >>> (4 * group)) & 3;
                int i1 = (rowMeta >>> (4 * group + 2)) & 3;
                assertTrue(i0 < i1, "tile " + rt + " chunk " + c + " row " + row + " group " + group
                        + ": indices " + i0 + ", " + i1 + " must be distinct and ascending");
                dense[row][4 * group + i0] += compressed[row][2 * group];
                dense[row][4 * group + i1] += compressed[row][2 * group + 1];
            }
        }
        return dense;
    }

    private static void assertRebuilds(Sparse24Weights w) {
        Sparse24MmaLayout m = Sparse24MmaLayout.of(w);
        int tiles = Sparse24MmaLayout.rowTiles(w.rows());
        assertEquals(tiles * (w.cols() / 32) * 128, m.fragments().length);
        assertEquals(tiles * (w.cols() / 32) * 16, m.meta().length);
        for (int rt = 0; rt < tiles; rt++) {
            for (int c = 0; c < w.cols() / 32; c++) {
                float[][] dense = hardwareView(m, rt, c);
                for (int i = 0; i < 16; i++) {
                    int row = rt * 16 + i;
                    for (int j = 0; j < 32; j++) {
                        float want = row < w.rows() ? w.value(row, 32 * c + j) : 0f;
                        assertEquals(want, dense[i][j], "row " + row + " column " + (32 * c + j));
                    }
                }
            }
        }
    }

    @Test
    void hardwareViewRebuildsPrunedMatricesOfAwkwardSizes() {
        Random r = TestRandom.create("Sparse24MmaLayoutTest.sizes");
        for (int rows : new int[] {1, 3, 16, 17, 33, 111}) {
            for (int cols : new int[] {32, 64, 96, 192}) {
                float[] dense = new float[rows * cols];
                for (int i = 0; i < dense.length; i++) {
                    dense[i] = (float) r.nextGaussian();
                }
                assertRebuilds(Sparse24Weights.compress(dense, rows, cols));
            }
        }
    }

    @Test
    void repeatedOrDescendingIndicesBecomeValidMetadata() {
        // What a pruning tool may write: a group naming one column twice (all its weights but one
        // zero), or its two columns in descending order.
        Random r = TestRandom.create("Sparse24MmaLayoutTest.nibbles");
        int rows = 20;
        int cols = 64;
        short[] values = new short[rows * cols / 2];
        for (int i = 0; i < values.length; i++) {
            values[i] = Float.floatToFloat16((float) r.nextGaussian());
        }
        int[] meta = new int[rows * cols / 32];
        for (int i = 0; i < meta.length; i++) {
            for (int g = 0; g < 8; g++) {
                meta[i] |= r.nextInt(16) << (4 * g); // every nibble, valid or not
            }
        }
        meta[0] = 0; // all of row 0's first chunk: column 0 named twice
        Sparse24Weights w = new Sparse24Weights(rows, cols, values, meta);
        assertNotEquals(0f, w.value(0, 0));
        assertRebuilds(w);
    }

    @Test
    void laneZeroAndOneHoldTheTwoHalvesOfRowsGAndGPlus8() {
        // One tile, one chunk: row 0 keeps columns (1, 3) in every group, row 8 (0, 2).
        int rows = 16;
        int cols = 32;
        short[] values = new short[rows * cols / 2];
        int[] meta = new int[rows];
        for (int row = 0; row < rows; row++) {
            int nibble = row == 0 ? (1 | 3 << 2) : row == 8 ? (0 | 2 << 2) : (0 | 1 << 2);
            for (int g = 0; g < 8; g++) {
                meta[row] |= nibble << (4 * g);
            }
        }
        Sparse24MmaLayout m = Sparse24MmaLayout.of(new Sparse24Weights(rows, cols, values, meta));
        assertEquals(0x8888_DDDD, m.meta()[0], "lane 0: row 8's columns 0-15 high, row 0's low");
        assertEquals(0x8888_DDDD, m.meta()[1], "lane 1: columns 16-31 of the same rows");
        assertEquals(0x4444_4444, m.meta()[2], "lanes 4, 5: rows 1 and 9");
    }
}
