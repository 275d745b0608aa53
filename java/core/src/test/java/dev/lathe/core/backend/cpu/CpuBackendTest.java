package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.testing.TestRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The CPU backend's ops (vectorised, multi-threaded) against plain scalar loops written from the
 * definitions, on random inputs of awkward sizes. Outputs are poisoned with NaN before each run.
 */
class CpuBackendTest {
    private static final int[] SIZES = TestRandom.AWKWARD_SIZES;
    private static CpuBackend backend;
    private static Arena arena;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        arena = Arena.ofShared();
    }

    @AfterAll
    static void stop() {
        backend.close();
        arena.close();
    }

    private static HostTensor random(Random r, int rows, int cols) {
        HostTensor t = new HostTensor(rows, cols);
        for (int i = 0; i < t.data().length; i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }

    private static HostTensor poisoned(int rows, int cols) {
        HostTensor t = new HostTensor(rows, cols);
        Arrays.fill(t.data(), Float.NaN);
        return t;
    }

    private static WeightMatrix f32(String name, float[] values, int rows, int cols) {
        return WeightMatrices.of(name, GgmlType.F32, rows, cols, WeightEncoder.encode(GgmlType.F32, values, rows, cols, arena));
    }

    private static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    /** Relative tolerance for sums of n f32 products in a different order: a few ulps times sqrt(n). */
    private static double tolerance(int n, double magnitude) {
        return 1e-6 * Math.sqrt(n) * Math.max(1, magnitude) * 8;
    }

    @Test
    void rmsNormMatchesDefinition() {
        Random r = TestRandom.create("rmsNorm");
        for (int cols : SIZES) {
            for (int rows : new int[] {1, 3, 17}) {
                HostTensor x = random(r, rows, cols);
                float[] w = gaussian(r, cols);
                HostTensor out = poisoned(rows, cols);
                backend.rmsNorm(out, x, f32("norm", w, 1, cols), 1e-5f);
                for (int t = 0; t < rows; t++) {
                    double ss = 0;
                    for (int i = 0; i < cols; i++) {
                        ss += (double) x.data()[t * cols + i] * x.data()[t * cols + i];
                    }
                    double scale = 1 / Math.sqrt(ss / cols + 1e-5);
                    for (int i = 0; i < cols; i++) {
                        double expected = x.data()[t * cols + i] * scale * w[i];
                        assertEquals(expected, out.data()[t * cols + i], 1e-5 * Math.max(1, Math.abs(expected)), "cols " + cols);
                    }
                }
            }
        }
    }

    @Test
    void matmulOfEveryShapeMatchesPlainLoops() {
        Random r = TestRandom.create("matmul");
        for (int rows : SIZES) {
            for (int cols : SIZES) {
                for (int tokens : new int[] {1, 3, 17}) {
                    float[] w = gaussian(r, rows * cols);
                    HostTensor x = random(r, tokens, cols);
                    HostTensor out = poisoned(tokens, rows);
                    backend.matmul(out, x, f32("w", w, rows, cols));
                    for (int t = 0; t < tokens; t++) {
                        for (int o = 0; o < rows; o++) {
                            double expected = 0;
                            for (int i = 0; i < cols; i++) {
                                expected += (double) w[o * cols + i] * x.data()[t * cols + i];
                            }
                            assertEquals(expected, out.data()[t * rows + o], tolerance(cols, Math.abs(expected)),
                                    "[" + rows + ", " + cols + "] x " + tokens);
                        }
                    }
                }
            }
        }
    }

    /**
     * The fused path (every weight tiled, one format, one fork) and the fallback (mixed formats)
     * against one matmul per weight: bit for bit, with the row groups of Q, K and V of awkward
     * heights split over two threads at every input count.
     */
    @Test
    void matmulsEqualSeparateMatmulsBitForBit() {
        Random r = TestRandom.create("matmuls");
        int cols = 96;
        for (GgmlType[] types : new GgmlType[][] {{GgmlType.Q8_0, GgmlType.Q8_0, GgmlType.Q8_0},
                {GgmlType.Q4_0, GgmlType.Q4_0, GgmlType.Q4_0}, {GgmlType.F16, GgmlType.F16, GgmlType.F16},
                {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.F32}}) {
            int[] heights = {333, 70, 17};
            WeightMatrix[] weights = new WeightMatrix[3];
            for (int i = 0; i < 3; i++) {
                float[] w = gaussian(r, heights[i] * cols);
                weights[i] = backend.upload(WeightMatrices.of("w" + i, types[i], heights[i], cols,
                        WeightEncoder.encode(types[i], w, heights[i], cols, arena)));
            }
            for (int tokens : new int[] {1, 3, 17}) {
                HostTensor x = random(r, tokens, cols);
                HostTensor[] fused = new HostTensor[3];
                for (int i = 0; i < 3; i++) {
                    fused[i] = poisoned(tokens, heights[i]);
                }
                backend.matmuls(fused, x, weights);
                for (int i = 0; i < 3; i++) {
                    HostTensor alone = poisoned(tokens, heights[i]);
                    backend.matmul(alone, x, weights[i]);
                    assertArrayEquals(alone.data(), fused[i].data(), Arrays.toString(types) + " weight " + i + ", "
                            + tokens + " inputs");
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> backend.matmuls(new HostTensor[1], new HostTensor(1, cols),
                new WeightMatrix[2]));
    }

    @Test
    void ropeRotatesThePairsEachLayoutNames() {
        Random r = TestRandom.create("rope");
        for (RopeStyle style : RopeStyle.values()) {
            for (int headDim : new int[] {2, 6, 34, 128}) {
                int heads = 3;
                int tokens = 5;
                HostTensor x = random(r, tokens, heads * headDim);
                float[] original = x.data().clone();
                int[] positions = {0, 1, 7, 100, 4095};
                float[] invFreq = new float[headDim / 2];
                for (int i = 0; i < invFreq.length; i++) {
                    invFreq[i] = (float) Math.pow(10000, -2.0 * i / headDim);
                }
                backend.rope(x, heads, headDim, positions, invFreq, style);
                for (int t = 0; t < tokens; t++) {
                    for (int h = 0; h < heads; h++) {
                        for (int i = 0; i < headDim / 2; i++) {
                            int base = t * heads * headDim + h * headDim;
                            int a = style == RopeStyle.INTERLEAVED ? base + 2 * i : base + i;
                            int b = style == RopeStyle.INTERLEAVED ? a + 1 : a + headDim / 2;
                            double angle = (double) positions[t] * invFreq[i];
                            double ea = original[a] * Math.cos(angle) - original[b] * Math.sin(angle);
                            double eb = original[a] * Math.sin(angle) + original[b] * Math.cos(angle);
                            // f32 angle (pos * freq rounded) vs double: up to ~4095 * 2^-24 rad of phase error.
                            assertEquals(ea, x.data()[a], 2e-3, style + " headDim " + headDim);
                            assertEquals(eb, x.data()[b], 2e-3, style + " headDim " + headDim);
                        }
                    }
                }
            }
        }
    }

    @Test
    void swigluAddEmbedAndGatherMatchDefinitions() {
        Random r = TestRandom.create("elementwise");
        for (int cols : SIZES) {
            HostTensor gate = random(r, 3, cols);
            HostTensor up = random(r, 3, cols);
            float[] g = gate.data().clone();
            backend.swiglu(gate, up);
            for (int i = 0; i < g.length; i++) {
                double expected = g[i] / (1 + Math.exp(-g[i])) * up.data()[i];
                assertEquals(expected, gate.data()[i], 1e-5 * Math.max(1, Math.abs(expected)));
            }
            HostTensor a = random(r, 3, cols);
            HostTensor b = random(r, 3, cols);
            float[] before = a.data().clone();
            backend.add(a, b);
            for (int i = 0; i < before.length; i++) {
                assertEquals(before[i] + b.data()[i], a.data()[i], 0f);
            }
            float[] table = gaussian(r, 11 * cols);
            HostTensor embedded = poisoned(4, cols);
            int[] tokens = {10, 0, 3, 10};
            backend.embed(embedded, f32("embd", table, 11, cols), tokens);
            HostTensor gathered = poisoned(2, cols);
            backend.gatherRows(gathered, embedded, new int[] {3, 1});
            for (int i = 0; i < cols; i++) {
                assertEquals(table[10 * cols + i], embedded.data()[i], 0f);
                assertEquals(table[3 * cols + i], embedded.data()[2 * cols + i], 0f);
                assertEquals(table[10 * cols + i], gathered.data()[i], 0f);
                assertEquals(table[i], gathered.data()[cols + i], 0f);
            }
        }
    }

    /**
     * Two sequences in one ragged batch (one prefilling 5 tokens after 12 cached, one decoding 1
     * after 30), blocks scattered through the pool, GQA with 3 query heads per KV head: every
     * output row equals softmax(q k^T * scale) v over that sequence's positions 0..pos.
     */
    @Test
    void pagedGroupedQueryAttentionMatchesDefinition() {
        Random r = TestRandom.create("attention");
        for (int headDim : new int[] {3, 17, 64}) {
            int kvHeads = 2;
            int heads = 6;
            int blockSize = 4;
            int numBlocks = 20;
            int[] contextLen = {12, 30};
            int[] newTokens = {5, 1};
            int[][] tables = {{7, 2, 15, 0, 9}, {1, 3, 4, 5, 6, 8, 10, 11}};
            int totalNew = 6;
            int rowFloats = kvHeads * headDim;
            // Full K/V per sequence for the reference; positions already cached go straight into the pool.
            float[][][] keys = new float[2][][];
            float[][][] values = new float[2][][];
            try (KvCache cache = backend.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim)) {
                CpuKvCache pool = (CpuKvCache) cache;
                int[] tokens = new int[totalNew];
                int[] positions = new int[totalNew];
                int[] slots = new int[totalNew];
                HostTensor k = new HostTensor(totalNew, rowFloats);
                HostTensor v = new HostTensor(totalNew, rowFloats);
                int row = 0;
                for (int s = 0; s < 2; s++) {
                    int length = contextLen[s] + newTokens[s];
                    keys[s] = new float[length][];
                    values[s] = new float[length][];
                    for (int pos = 0; pos < length; pos++) {
                        keys[s][pos] = gaussian(r, rowFloats);
                        values[s][pos] = gaussian(r, rowFloats);
                        int slot = tables[s][pos / blockSize] * blockSize + pos % blockSize;
                        if (pos < contextLen[s]) {
                            System.arraycopy(keys[s][pos], 0, pool.keys[0], slot * rowFloats, rowFloats);
                            System.arraycopy(values[s][pos], 0, pool.values[0], slot * rowFloats, rowFloats);
                        } else {
                            positions[row] = pos;
                            slots[row] = slot;
                            System.arraycopy(keys[s][pos], 0, k.data(), row * rowFloats, rowFloats);
                            System.arraycopy(values[s][pos], 0, v.data(), row * rowFloats, rowFloats);
                            row++;
                        }
                    }
                }
                int[] blockTable = new int[tables[0].length + tables[1].length];
                System.arraycopy(tables[0], 0, blockTable, 0, tables[0].length);
                System.arraycopy(tables[1], 0, blockTable, tables[0].length, tables[1].length);
                BatchPlan plan = new BatchPlan(tokens, positions, new int[] {0, 5, 6}, contextLen,
                        new int[] {0, tables[0].length, blockTable.length}, blockTable, slots, new int[] {4, 5}, blockSize);
                backend.writeKv(cache, 0, k, v, slots);
                HostTensor q = random(r, totalNew, heads * headDim);
                HostTensor out = poisoned(totalNew, heads * headDim);
                float scale = (float) (1 / Math.sqrt(headDim));
                backend.attention(out, q, cache, 0, plan, heads, scale);

                for (int t = 0; t < totalNew; t++) {
                    int s = t < 5 ? 0 : 1;
                    int pos = positions[t];
                    for (int h = 0; h < heads; h++) {
                        int kvHead = h / (heads / kvHeads);
                        double[] scores = new double[pos + 1];
                        double max = Double.NEGATIVE_INFINITY;
                        for (int j = 0; j <= pos; j++) {
                            double dot = 0;
                            for (int d = 0; d < headDim; d++) {
                                dot += (double) q.data()[t * heads * headDim + h * headDim + d] * keys[s][j][kvHead * headDim + d];
                            }
                            scores[j] = dot * scale;
                            max = Math.max(max, scores[j]);
                        }
                        double sum = 0;
                        for (int j = 0; j <= pos; j++) {
                            scores[j] = Math.exp(scores[j] - max);
                            sum += scores[j];
                        }
                        for (int d = 0; d < headDim; d++) {
                            double expected = 0;
                            for (int j = 0; j <= pos; j++) {
                                expected += scores[j] / sum * values[s][j][kvHead * headDim + d];
                            }
                            assertEquals(expected, out.data()[t * heads * headDim + h * headDim + d], 1e-4,
                                    "token " + t + " head " + h + " dim " + d + " (headDim " + headDim + ")");
                        }
                    }
                }
            }
        }
    }
}
