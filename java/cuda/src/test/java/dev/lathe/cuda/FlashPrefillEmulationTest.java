package dev.lathe.cuda;

import dev.lathe.core.testing.TestRandom;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The flash prefill kernel's algorithm emulated on the CPU, warp by warp and lane by lane:
 * {@code ldmatrix} (plain and {@code .trans}) and {@code mma.sync m16n8k16} modelled from the PTX
 * ISA's fragment layouts, and every shared-memory address, fragment index, mask and softmax step
 * transcribed from kernels/attention/flash_prefill.cuh. Against a plain attention in double over
 * the same f16-rounded operands, this checks the fragment arithmetic (an index slip gives errors of
 * the order of the values), the GQA row mapping, the tiles' coverage of ragged chunks, the causal
 * mask on diagonal tiles only and the once-per-tile rescaling, without a GPU.
 *
 * <p>It checks the design, not the compiled kernel: a transcription slip between this file and the
 * .cuh, or an error in the PTX layouts as modelled here, would pass here and fail on the GPU
 * (FlashPrefillParityTest). Keep the two in step when either changes.
 */
class FlashPrefillEmulationTest {
    private static final int ROWS = 64;  // kFlashRows
    private static final int WARPS = 4;

    private static float h(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    /**
     * ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lane l gives the row address of row l % 8
     * of matrix l / 8. Register i of lane T holds, of matrix i, elements (T/4, 2(T%4)) and
     * (T/4, 2(T%4)+1); with .trans, (2(T%4), T/4) and (2(T%4)+1, T/4). Returns [lane][reg][half].
     */
    private static float[][][] ldmatrix(float[] shared, int[] address, boolean trans) {
        float[][][] r = new float[32][4][2];
        for (int lane = 0; lane < 32; lane++) {
            for (int i = 0; i < 4; i++) {
                for (int e = 0; e < 2; e++) {
                    r[lane][i][e] = trans
                            ? shared[address[8 * i + 2 * (lane % 4) + e] + lane / 4]
                            : shared[address[8 * i + lane / 4] + 2 * (lane % 4) + e];
                }
            }
        }
        return r;
    }

    /**
     * mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32, g = lane/4, t = lane%4: A registers 0-3
     * hold (g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..); B registers 0-1 hold
     * (k 2t..2t+1, n g) and (k 2t+8.., n g); C elements 0-3 are (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).
     */
    private static void mma(float[][] c, float[][][] a, float[][] b0, float[][] b1) {
        double[][] am = new double[16][16];
        double[][] bm = new double[16][8];
        for (int lane = 0; lane < 32; lane++) {
            int g = lane / 4;
            int t = lane % 4;
            for (int e = 0; e < 2; e++) {
                am[g][2 * t + e] = a[lane][0][e];
                am[g + 8][2 * t + e] = a[lane][1][e];
                am[g][2 * t + 8 + e] = a[lane][2][e];
                am[g + 8][2 * t + 8 + e] = a[lane][3][e];
                bm[2 * t + e][g] = b0[lane][e];
                bm[2 * t + 8 + e][g] = b1[lane][e];
            }
        }
        for (int lane = 0; lane < 32; lane++) {
            int g = lane / 4;
            int t = lane % 4;
            for (int i = 0; i < 4; i++) {
                int row = g + (i >= 2 ? 8 : 0);
                int col = 2 * t + (i & 1);
                double sum = c[lane][i];
                for (int k = 0; k < 16; k++) {
                    sum += am[row][k] * bm[k][col];
                }
                c[lane][i] = (float) sum;
            }
        }
    }

    private static float[][] reg(float[][][] r, int i) {
        float[][] out = new float[32][];
        for (int lane = 0; lane < 32; lane++) {
            out[lane] = r[lane][i];
        }
        return out;
    }

    /** One sequence batch in the kernel's terms; pools are [slots, kvHeads * headDim] f32 (rounded to f16 on load). */
    private record Problem(int heads, int kvHeads, int headDim, int blockSize, int[] positions, int[] seqStart,
                           int[] tableStart, int[] table, float[] q, float[] k, float[] v, float scale) {
    }

    /** The kernel for every (tile, KV head, sequence) block; out [tokens, heads * headDim]. */
    private static float[] emulate(Problem p, int maxSeqTokens) {
        int headDim = p.headDim;
        int bn = headDim == 64 ? 64 : 32;  // launch_flash_prefill_as
        int pitch = headDim + 8;
        int dimTiles = headDim / 8;
        int keyTiles = bn / 8;
        int group = p.heads / p.kvHeads;
        int perTile = ROWS / group;
        int tiles = FlashPrefill.tiles(maxSeqTokens, group);
        int qRow = p.heads * headDim;
        int kvRow = p.kvHeads * headDim;
        int tokens = p.positions.length;
        float[] out = new float[tokens * qRow];
        Arrays.fill(out, Float.NaN);
        for (int seq = 0; seq + 1 < p.seqStart.length; seq++) {
            for (int kvHead = 0; kvHead < p.kvHeads; kvHead++) {
                for (int x = 0; x < tiles; x++) {
                    int seqBegin = p.seqStart[seq];
                    int seqEnd = p.seqStart[seq + 1];
                    int tileBegin = seqBegin + x * perTile;
                    if (tileBegin >= seqEnd) {
                        continue;
                    }
                    float[] qTile = new float[ROWS * pitch];
                    float[] kTile = new float[bn * pitch];
                    float[] vTile = new float[bn * pitch];
                    int[] rowPosition = new int[ROWS];
                    for (int r = 0; r < ROWS; r++) {
                        int token = tileBegin + r / group;
                        boolean valid = r < perTile * group && token < seqEnd;
                        rowPosition[r] = valid ? p.positions[token] : -1;
                        for (int d = 0; d < headDim; d++) {
                            int head = kvHead * group + r % group;
                            qTile[r * pitch + d] = valid ? h(p.q[token * qRow + head * headDim + d]) : 0f;
                        }
                    }
                    int first = Integer.MAX_VALUE;
                    int last = -1;
                    for (int r = 0; r < ROWS; r++) {
                        if (rowPosition[r] >= 0) {
                            first = Math.min(first, rowPosition[r]);
                            last = Math.max(last, rowPosition[r]);
                        }
                    }
                    int tableBegin = p.tableStart[seq];
                    int tableBlocks = p.tableStart[seq + 1] - tableBegin;
                    if (last / p.blockSize >= tableBlocks) {
                        throw new AssertionError("the test's table must cover the windows");
                    }
                    float[][][][][] qfr = new float[WARPS][headDim / 16][][][];
                    float[][] m = new float[WARPS * 32][2];
                    float[][] l = new float[WARPS * 32][2];
                    float[][][] oAcc = new float[WARPS][dimTiles * 32][4];  // [warp][tile * 32 + lane][i]
                    for (int warp = 0; warp < WARPS; warp++) {
                        for (int kk = 0; kk < headDim / 16; kk++) {
                            int[] address = new int[32];
                            for (int lane = 0; lane < 32; lane++) {
                                address[lane] = (warp * 16 + (lane & 15)) * pitch + kk * 16 + (lane >> 4) * 8;
                            }
                            qfr[warp][kk] = ldmatrix(qTile, address, false);
                        }
                        for (int lane = 0; lane < 32; lane++) {
                            Arrays.fill(m[warp * 32 + lane], Float.NEGATIVE_INFINITY);
                        }
                    }
                    float scaleLog2 = p.scale * 1.4426950408889634f;
                    int walkEnd = last + 1;
                    for (int kv0 = 0; kv0 < walkEnd; kv0 += bn) {
                        for (int r = 0; r < bn; r++) {
                            int pos = kv0 + r;
                            for (int d = 0; d < headDim; d++) {
                                float kv = 0f;
                                float vv = 0f;
                                if (pos < walkEnd) {
                                    int block = p.table[tableBegin + pos / p.blockSize];
                                    int base = (block * p.blockSize + pos % p.blockSize) * kvRow + kvHead * headDim + d;
                                    kv = h(p.k[base]);
                                    vv = h(p.v[base]);
                                }
                                kTile[r * pitch + d] = kv;
                                vTile[r * pitch + d] = vv;
                            }
                        }
                        for (int warp = 0; warp < WARPS; warp++) {
                            float[][][] s = new float[keyTiles][32][4];
                            for (int kk = 0; kk < headDim / 16; kk++) {
                                for (int n = 0; n < bn / 16; n++) {
                                    int[] address = new int[32];
                                    for (int lane = 0; lane < 32; lane++) {
                                        address[lane] = (n * 16 + (lane & 7) + ((lane >> 4) << 3)) * pitch + kk * 16
                                                + ((lane >> 3) & 1) * 8;
                                    }
                                    float[][][] b = ldmatrix(kTile, address, false);
                                    mma(s[2 * n], qfr[warp][kk], reg(b, 0), reg(b, 1));
                                    mma(s[2 * n + 1], qfr[warp][kk], reg(b, 2), reg(b, 3));
                                }
                            }
                            boolean diagonal = kv0 + bn - 1 > first;
                            float[][] tileMax = new float[32][2];
                            for (int lane = 0; lane < 32; lane++) {
                                int rowLo = warp * 16 + (lane >> 2);
                                int posLo = rowPosition[rowLo];
                                int posHi = rowPosition[rowLo + 8];
                                Arrays.fill(tileMax[lane], Float.NEGATIVE_INFINITY);
                                for (int j = 0; j < keyTiles; j++) {
                                    for (int i = 0; i < 4; i++) {
                                        float xv = s[j][lane][i] * scaleLog2;
                                        if (diagonal) {
                                            int key = kv0 + 8 * j + 2 * (lane & 3) + (i & 1);
                                            if (key > (i < 2 ? posLo : posHi)) {
                                                xv = Float.NEGATIVE_INFINITY;
                                            }
                                        }
                                        s[j][lane][i] = xv;
                                        tileMax[lane][i >> 1] = Math.max(tileMax[lane][i >> 1], xv);
                                    }
                                }
                            }
                            for (int offset : new int[] {1, 2}) {  // __shfl_xor_sync
                                float[][] before = new float[32][];
                                for (int lane = 0; lane < 32; lane++) {
                                    before[lane] = tileMax[lane].clone();
                                }
                                for (int lane = 0; lane < 32; lane++) {
                                    for (int hh = 0; hh < 2; hh++) {
                                        tileMax[lane][hh] = Math.max(before[lane][hh], before[lane ^ offset][hh]);
                                    }
                                }
                            }
                            float[][][] pf = new float[32][4][2];
                            for (int lane = 0; lane < 32; lane++) {
                                float[] ml = m[warp * 32 + lane];
                                float[] ll = l[warp * 32 + lane];
                                float[] correction = new float[2];
                                float[] base = new float[2];
                                for (int hh = 0; hh < 2; hh++) {
                                    float mNew = Math.max(ml[hh], tileMax[lane][hh]);
                                    base[hh] = mNew == Float.NEGATIVE_INFINITY ? 0f : mNew;
                                    correction[hh] = (float) Math.pow(2, ml[hh] - base[hh]);
                                    ml[hh] = mNew;
                                    ll[hh] *= correction[hh];
                                }
                                for (int j = 0; j < keyTiles; j++) {
                                    for (int i = 0; i < 4; i++) {
                                        float pv = (float) Math.pow(2, s[j][lane][i] - base[i >> 1]);
                                        s[j][lane][i] = pv;
                                        ll[i >> 1] += pv;
                                    }
                                }
                                for (int j = 0; j < dimTiles; j++) {
                                    float[] acc = oAcc[warp][j * 32 + lane];
                                    acc[0] *= correction[0];
                                    acc[1] *= correction[0];
                                    acc[2] *= correction[1];
                                    acc[3] *= correction[1];
                                }
                            }
                            for (int kk = 0; kk < bn / 16; kk++) {
                                for (int lane = 0; lane < 32; lane++) {
                                    pf[lane][0] = new float[] {h(s[2 * kk][lane][0]), h(s[2 * kk][lane][1])};
                                    pf[lane][1] = new float[] {h(s[2 * kk][lane][2]), h(s[2 * kk][lane][3])};
                                    pf[lane][2] = new float[] {h(s[2 * kk + 1][lane][0]), h(s[2 * kk + 1][lane][1])};
                                    pf[lane][3] = new float[] {h(s[2 * kk + 1][lane][2]), h(s[2 * kk + 1][lane][3])};
                                }
                                for (int n = 0; n < headDim / 16; n++) {
                                    int[] address = new int[32];
                                    for (int lane = 0; lane < 32; lane++) {
                                        address[lane] = (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * pitch + n * 16
                                                + (lane >> 4) * 8;
                                    }
                                    float[][][] b = ldmatrix(vTile, address, true);
                                    mma(tile(oAcc[warp], 2 * n), pf, reg(b, 0), reg(b, 1));
                                    mma(tile(oAcc[warp], 2 * n + 1), pf, reg(b, 2), reg(b, 3));
                                }
                            }
                        }
                    }
                    for (int warp = 0; warp < WARPS; warp++) {
                        float[][] lr = new float[32][2];
                        for (int lane = 0; lane < 32; lane++) {
                            lr[lane] = l[warp * 32 + lane].clone();
                        }
                        for (int offset : new int[] {1, 2}) {
                            float[][] before = new float[32][];
                            for (int lane = 0; lane < 32; lane++) {
                                before[lane] = lr[lane].clone();
                            }
                            for (int lane = 0; lane < 32; lane++) {
                                for (int hh = 0; hh < 2; hh++) {
                                    lr[lane][hh] = before[lane][hh] + before[lane ^ offset][hh];
                                }
                            }
                        }
                        for (int lane = 0; lane < 32; lane++) {
                            for (int hh = 0; hh < 2; hh++) {
                                int r = warp * 16 + (lane >> 2) + 8 * hh;
                                if (rowPosition[r] < 0) {
                                    continue;
                                }
                                int token = tileBegin + r / group;
                                int head = kvHead * group + r % group;
                                int dst = token * qRow + head * headDim + 2 * (lane & 3);
                                float inv = 1.0f / lr[lane][hh];
                                for (int j = 0; j < dimTiles; j++) {
                                    float[] acc = oAcc[warp][j * 32 + lane];
                                    out[dst + 8 * j] = acc[2 * hh] * inv;
                                    out[dst + 8 * j + 1] = acc[2 * hh + 1] * inv;
                                }
                            }
                        }
                    }
                }
            }
        }
        return out;
    }

    /** The [32][4] accumulator of dim tile j, a view into [tile * 32 + lane][4]. */
    private static float[][] tile(float[][] acc, int j) {
        return Arrays.copyOfRange(acc, j * 32, j * 32 + 32);  // rows are shared arrays: writes land in acc
    }

    /** Attention in double over f16-rounded q, k, v: the kernel's exact operands. */
    private static double[] reference(Problem p) {
        int headDim = p.headDim;
        int qRow = p.heads * headDim;
        int kvRow = p.kvHeads * headDim;
        int group = p.heads / p.kvHeads;
        double[] out = new double[p.positions.length * qRow];
        for (int seq = 0; seq + 1 < p.seqStart.length; seq++) {
            for (int t = p.seqStart[seq]; t < p.seqStart[seq + 1]; t++) {
                int pos = p.positions[t];
                for (int head = 0; head < p.heads; head++) {
                    int kvHead = head / group;
                    double[] s = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= pos; j++) {
                        int base = slot(p, seq, j) * kvRow + kvHead * headDim;
                        double dot = 0;
                        for (int d = 0; d < headDim; d++) {
                            dot += (double) h(p.q[t * qRow + head * headDim + d]) * h(p.k[base + d]);
                        }
                        s[j] = dot * p.scale;
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= pos; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int j = 0; j <= pos; j++) {
                        int base = slot(p, seq, j) * kvRow + kvHead * headDim;
                        for (int d = 0; d < headDim; d++) {
                            out[t * qRow + head * headDim + d] += s[j] / sum * h(p.v[base + d]);
                        }
                    }
                }
            }
        }
        return out;
    }

    private static int slot(Problem p, int seq, int pos) {
        return p.table[p.tableStart[seq] + pos / p.blockSize] * p.blockSize + pos % p.blockSize;
    }

    private static Problem problem(Random r, int heads, int kvHeads, int headDim, int blockSize, int[] context,
                                   int[] newTokens) {
        int b = context.length;
        int[] seqStart = new int[b + 1];
        int[] tableStart = new int[b + 1];
        for (int s = 0; s < b; s++) {
            seqStart[s + 1] = seqStart[s] + newTokens[s];
            tableStart[s + 1] = tableStart[s] + (context[s] + newTokens[s] + blockSize - 1) / blockSize;
        }
        int blocks = tableStart[b] + 2;
        int[] ids = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            ids[i] = i;
        }
        for (int i = blocks - 1; i > 0; i--) {  // shuffled: the table, not the order, finds the prefix
            int j = r.nextInt(i + 1);
            int tmp = ids[i];
            ids[i] = ids[j];
            ids[j] = tmp;
        }
        int[] table = Arrays.copyOf(ids, tableStart[b]);
        int tokens = seqStart[b];
        int[] positions = new int[tokens];
        for (int s = 0; s < b; s++) {
            for (int i = 0; i < newTokens[s]; i++) {
                positions[seqStart[s] + i] = context[s] + i;
            }
        }
        int kvValues = blocks * blockSize * kvHeads * headDim;
        return new Problem(heads, kvHeads, headDim, blockSize, positions, seqStart, tableStart, table,
                gaussian(r, tokens * heads * headDim), gaussian(r, kvValues), gaussian(r, kvValues),
                (float) (1 / Math.sqrt(headDim)));
    }

    private static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    /**
     * The operands are exact here, so only P's rounding to f16 (a relative u = 2^-11 per weight,
     * while l sums the unrounded weights) and f32 sums separate the two: |error| <= 2u max|v| to
     * first order; allowed 2.5u max|v| + 1e-6. An index slip gives errors of order max|v|.
     */
    private static void check(Random r, int heads, int kvHeads, int headDim, int blockSize, int[] context,
                              int[] newTokens) {
        Problem p = problem(r, heads, kvHeads, headDim, blockSize, context, newTokens);
        int longest = 0;
        for (int n : newTokens) {
            longest = Math.max(longest, n);
        }
        float[] actual = emulate(p, longest);
        double[] expected = reference(p);
        double maxV = 0;
        for (float x : p.v) {
            maxV = Math.max(maxV, Math.abs(h(x)));
        }
        double tolerance = 2.5 * Math.scalb(1.0, -11) * maxV + 1e-6;
        for (int i = 0; i < actual.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            if (!(err <= tolerance)) {
                throw new AssertionError("heads=" + heads + " kvHeads=" + kvHeads + " headDim=" + headDim + " blockSize="
                        + blockSize + " context=" + Arrays.toString(context) + " new=" + Arrays.toString(newTokens)
                        + ": element " + i + " (token " + i / (heads * headDim) + ") is " + actual[i] + ", expected "
                        + expected[i] + " +- " + tolerance);
            }
        }
    }

    @Test
    void headDim64NoGqaAcrossBlockBoundaries() {
        Random r = TestRandom.create("FlashPrefillEmulationTest.d64");
        check(r, 2, 2, 64, 7, new int[] {5, 0}, new int[] {100, 1});
    }

    @Test
    void headDim128WithGroups4And8AndACachedPrefix() {
        Random r = TestRandom.create("FlashPrefillEmulationTest.d128");
        check(r, 8, 2, 128, 16, new int[] {300, 0, 40}, new int[] {17, 70, 1});
        check(r, 8, 1, 128, 5, new int[] {33}, new int[] {20});
    }

    @Test
    void groupsThatLeaveRowsOfATileUnused() {
        Random r = TestRandom.create("FlashPrefillEmulationTest.group3");
        check(r, 6, 2, 64, 16, new int[] {64, 3}, new int[] {30, 64});  // 21 tokens x 3 heads per tile
    }
}
