package dev.lathe.core.backend.cpu;

import dev.lathe.core.backend.Backend;
import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.concurrent.Parallel;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.CpuVectorWidth;
import dev.lathe.core.tensor.HalfRows;
import dev.lathe.core.tensor.Int8Rows;
import dev.lathe.core.tensor.LaneSums;
import dev.lathe.core.tensor.RowTiledMatrix;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The reference backend: Java arrays for activations, the weight formats' own Vector API kernels
 * for the products, multi-threaded across output rows (matmul) and heads (attention).
 */
public final class CpuBackend implements Backend {
    private static final VectorSpecies<Float> F = CpuVectorWidth.FLOATS; // the weight kernels' width (one switch for all)
    /** Below this many multiply-adds a matmul runs on the calling thread. */
    private static final long PARALLEL_THRESHOLD = 1 << 15;
    /**
     * {@code -Dlathe.cpu.repack=off} keeps Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16 and BF16 weights as the file has them
     * instead of in {@link RowTiledMatrix}'s tiles: for measuring one against the other.
     */
    static final String REPACK_PROPERTY = "lathe.cpu.repack";

    private final int threads;
    /** Whether {@link #upload} re-lays weights in row tiles ({@link #REPACK_PROPERTY}, read once). */
    private final boolean repack;
    /** The uploaded weights' tiles ({@link RowTiledMatrix}): freed when the backend closes. */
    private final Arena weights = Arena.ofShared();

    /** {@code threads} threads; row tiles unless {@code -Dlathe.cpu.repack=off}. */
    public CpuBackend(int threads) {
        this(threads, repackProperty());
    }

    /**
     * {@code threads} threads; Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16 and BF16 weights in {@link RowTiledMatrix}'s
     * tiles ({@code repack}) or as the file has them. Q4_0 and K-quant tiles multiply against inputs
     * rounded to 8 bits (as llama.cpp's do); in the file's layout every product reads the f32 inputs.
     */
    public CpuBackend(int threads, boolean repack) {
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.repack = repack;
    }

    public int threads() {
        return threads;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String describe() {
        return "cpu (" + threads + " threads, " + F.vectorBitSize() + "-bit vectors, "
                + (repack ? "Q8_0/Q4_0/Q4_K/Q5_K/Q6_K/F16/BF16 in row tiles, Q4_0/Q4_K/Q5_K/Q6_K against 8-bit inputs" : "weights as in the file") + ")";
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return new HostTensor(rows, cols);
    }

    @Override
    public WeightMatrix upload(WeightMatrix weight) {
        return repack ? RowTiledMatrix.tile(weight, weights, threads) : weight;
    }

    @Override
    public WeightMatrix uploadTable(WeightMatrix table) {
        return table; // embed reads rows through dequantizeRow, which the file's blocks serve as well
    }

    private static boolean repackProperty() {
        String value = System.getProperty(REPACK_PROPERTY, "on");
        return switch (value) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new IllegalArgumentException("-D" + REPACK_PROPERTY + " must be on or off, got '" + value + "'");
        };
    }

    @Override
    public KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        return allocateKvCache(layers, numBlocks, blockSize, kvHeads, headDim, KvDtype.F32);
    }

    @Override
    public KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
        return new CpuKvCache(layers, numBlocks, blockSize, kvHeads, headDim, dtype);
    }

    private static HostTensor host(Tensor t) {
        return (HostTensor) t;
    }

    @Override
    public void embed(Tensor out, WeightMatrix table, int[] tokens) {
        HostTensor o = host(out);
        requireCols(o, table.cols(), "embed");
        for (int t = 0; t < tokens.length; t++) {
            int token = tokens[t];
            if (token < 0 || token >= table.rows()) {
                throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, " + table.rows() + ")");
            }
            table.dequantizeRow(token, o.data(), o.offset(t));
        }
    }

    @Override
    public void rmsNorm(Tensor out, Tensor x, WeightMatrix weight, float eps) {
        HostTensor o = host(out);
        HostTensor in = host(x);
        int n = in.cols();
        float[] w = new float[n];
        weight.dequantizeRow(0, w, 0);
        for (int t = 0; t < in.rows(); t++) {
            int base = in.offset(t);
            float sumSquares = VectorMath.dot(in.data(), base, in.data(), base, n);
            float scale = (float) (1.0 / Math.sqrt(sumSquares / n + eps));
            VectorMath.scaleMultiply(in.data(), base, w, 0, scale, o.data(), o.offset(t), n);
        }
    }

    @Override
    public void matmul(Tensor out, Tensor x, WeightMatrix w) {
        HostTensor o = host(out);
        HostTensor in = host(x);
        requireShapes(o, in, w);
        int tokens = in.rows();
        long work = (long) w.rows() * w.cols() * tokens;
        if (work < PARALLEL_THRESHOLD) {
            w.dotRows(0, w.rows(), in.data(), in.cols(), tokens, o.data(), 0, o.cols());
            return;
        }
        if (w instanceof RowTiledMatrix tiled) {
            dotTilesInOneFork(in, new HostTensor[] {o}, new RowTiledMatrix[] {tiled});
            return;
        }
        Parallel.forRange(w.rows(), threads, (start, end) -> w.dotRows(start, end, in.data(), in.cols(), tokens,
                o.data(), 0, o.cols()));
    }

    /**
     * NOTE: one fork for all the weights where every one is in row tiles of one format (so a row
     * group costs about the same in each); otherwise one {@link #matmul} after another. Each fork
     * costs a decode step a wait for the second vCPU (8.5-16 us late on this VM,
     * bench/results/cpu-decode.md), and Q, K, V, gate and up were five of a layer's eight forks (now
     * two); K and V are small (256 rows in the 200M model), so their forks were mostly that wait.
     */
    @Override
    public void matmuls(Tensor[] outs, Tensor x, WeightMatrix[] weights) {
        int count = weights.length;
        boolean oneFork = count > 1 && outs.length == count;
        long work = 0;
        for (int i = 0; i < count && oneFork; i++) {
            oneFork = weights[i] instanceof RowTiledMatrix && weights[i].type() == weights[0].type();
            work += oneFork ? (long) weights[i].rows() * weights[i].cols() * x.rows() : 0;
        }
        if (!oneFork || work < PARALLEL_THRESHOLD) {
            Backend.super.matmuls(outs, x, weights); // checks the counts, then one matmul each
            return;
        }
        HostTensor in = host(x);
        HostTensor[] out = new HostTensor[count];
        RowTiledMatrix[] tiled = new RowTiledMatrix[count];
        for (int i = 0; i < count; i++) {
            out[i] = host(outs[i]);
            tiled[i] = (RowTiledMatrix) weights[i];
            requireShapes(out[i], in, tiled[i]);
        }
        dotTilesInOneFork(in, out, tiled);
    }

    /**
     * {@code out[i] = in * tiled[i]^T} in one {@link Parallel} fork: the weights' row groups laid end
     * to end and split over the threads, so no thread's share starts mid-tile. Each weight's inputs
     * are prepared (Q4_0 and K-quants: rounded) once for all threads.
     */
    private void dotTilesInOneFork(HostTensor in, HostTensor[] out, RowTiledMatrix[] tiled) {
        int count = tiled.length;
        int group = RowTiledMatrix.ROW_GROUP;
        RowTiledMatrix.Inputs[] prepared = new RowTiledMatrix.Inputs[count];
        int[] firstGroup = new int[count + 1]; // weight i's row groups are [firstGroup[i], firstGroup[i + 1])
        for (int i = 0; i < count; i++) {
            prepared[i] = tiled[i].prepare(in.data(), in.cols(), in.rows());
            firstGroup[i + 1] = firstGroup[i] + (tiled[i].rows() + group - 1) / group;
        }
        Parallel.forRange(firstGroup[count], threads, (start, end) -> {
            for (int i = 0; i < count; i++) {
                int from = Math.max(start, firstGroup[i]) - firstGroup[i];
                int to = Math.min(end, firstGroup[i + 1]) - firstGroup[i];
                if (from < to) {
                    tiled[i].dotRows(prepared[i], from * group, Math.min(tiled[i].rows(), to * group),
                            out[i].data(), 0, out[i].cols());
                }
            }
        });
    }

    @Override
    public void addBias(Tensor x, WeightMatrix bias) {
        HostTensor in = host(x);
        float[] b = new float[in.cols()];
        bias.dequantizeRow(0, b, 0);
        for (int t = 0; t < in.rows(); t++) {
            VectorMath.addInPlace(in.data(), in.offset(t), b, 0, in.cols());
        }
    }

    @Override
    public void rope(Tensor x, int heads, int headDim, int[] positions, float[] invFreq, RopeStyle style) {
        HostTensor in = host(x);
        int half = headDim / 2;
        float[] cos = new float[half];
        float[] sin = new float[half];
        for (int t = 0; t < in.rows(); t++) {
            for (int i = 0; i < half; i++) {
                float angle = positions[t] * invFreq[i];
                cos[i] = (float) Math.cos(angle);
                sin[i] = (float) Math.sin(angle);
            }
            float[] d = in.data();
            for (int h = 0; h < heads; h++) {
                int base = in.offset(t) + h * headDim;
                for (int i = 0; i < half; i++) {
                    // INTERLEAVED rotates (2i, 2i+1); HALF_SPLIT rotates (i, i + half).
                    int a = style == RopeStyle.INTERLEAVED ? base + 2 * i : base + i;
                    int b = style == RopeStyle.INTERLEAVED ? a + 1 : a + half;
                    float x0 = d[a];
                    float x1 = d[b];
                    d[a] = x0 * cos[i] - x1 * sin[i];
                    d[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }

    @Override
    public void writeKv(KvCache cache, int layer, Tensor k, Tensor v, int[] slotMapping) {
        CpuKvCache c = (CpuKvCache) cache;
        HostTensor kt = host(k);
        HostTensor vt = host(v);
        int rowFloats = c.kvHeads() * c.headDim();
        requireCols(kt, rowFloats, "K");
        requireCols(vt, rowFloats, "V");
        long slots = (long) c.numBlocks() * c.blockSize();
        for (int t = 0; t < slotMapping.length; t++) {
            int slot = slotMapping[t];
            if (slot < 0 || slot >= slots) {
                throw new IllegalArgumentException("KV slot " + slot + " is outside the cache's " + slots + " slots");
            }
            if (c.keys != null) {
                System.arraycopy(kt.data(), kt.offset(t), c.keys[layer], slot * rowFloats, rowFloats);
                System.arraycopy(vt.data(), vt.offset(t), c.values[layer], slot * rowFloats, rowFloats);
            } else if (c.keyBytes != null) {
                // One scale per (token, kv-head) vector: heads differ in range, tokens too.
                int headDim = c.headDim();
                for (int h = 0; h < c.kvHeads(); h++) {
                    int at = slot * rowFloats + h * headDim;
                    int vector = slot * c.kvHeads() + h;
                    c.keyScales[layer][vector] = Int8Rows.quantize(kt.data(), kt.offset(t) + h * headDim, c.keyBytes[layer], at, headDim);
                    c.valueScales[layer][vector] = Int8Rows.quantize(vt.data(), vt.offset(t) + h * headDim, c.valueBytes[layer], at, headDim);
                }
            } else {
                HalfRows.encode(kt.data(), kt.offset(t), c.keyHalves[layer], slot * rowFloats, rowFloats, c.bfloat16());
                HalfRows.encode(vt.data(), vt.offset(t), c.valueHalves[layer], slot * rowFloats, rowFloats, c.bfloat16());
            }
        }
    }

    @Override
    public void attention(Tensor out, Tensor q, KvCache cache, int layer, BatchPlan plan, int heads, float scale) {
        CpuKvCache c = (CpuKvCache) cache;
        HostTensor o = host(out);
        HostTensor qt = host(q);
        int tokens = plan.tokenCount();
        // One task per (token, head): decode steps have few tokens, prefill many.
        int tasks = tokens * heads;
        long work = (long) tasks * (plan.positions()[tokens - 1] + 1) * c.headDim();
        if (work < PARALLEL_THRESHOLD) {
            attentionRange(o, qt, c, layer, plan, heads, scale, 0, tasks);
        } else {
            Parallel.forRange(tasks, threads, (start, end) -> attentionRange(o, qt, c, layer, plan, heads, scale, start, end));
        }
    }

    private static void attentionRange(HostTensor out, HostTensor q, CpuKvCache cache, int layer, BatchPlan plan,
                                       int heads, float scale, int taskStart, int taskEnd) {
        int headDim = cache.headDim();
        int kvHeads = cache.kvHeads();
        int group = heads / kvHeads;
        int blockSize = cache.blockSize();
        int rowFloats = kvHeads * headDim;
        // One of the three pairs is set: f32 pools; 16-bit pools widened to f32 as they are read; or
        // int8 pools widened in registers, each vector's scale applied once to its score or weight.
        float[] keys = cache.keys == null ? null : cache.keys[layer];
        float[] values = cache.values == null ? null : cache.values[layer];
        short[] keyHalves = cache.keyHalves == null ? null : cache.keyHalves[layer];
        short[] valueHalves = cache.valueHalves == null ? null : cache.valueHalves[layer];
        boolean bfloat16 = cache.bfloat16();
        byte[] keyBytes = cache.keyBytes == null ? null : cache.keyBytes[layer];
        byte[] valueBytes = cache.valueBytes == null ? null : cache.valueBytes[layer];
        float[] keyScales = cache.keyScales == null ? null : cache.keyScales[layer];
        float[] valueScales = cache.valueScales == null ? null : cache.valueScales[layer];
        int[] seqStart = plan.seqStart();
        float[] scores = null;
        int seq = 0;
        for (int task = taskStart; task < taskEnd; task++) {
            int t = task / heads;
            int h = task % heads;
            while (t >= seqStart[seq + 1]) {
                seq++;
            }
            int contextLen = plan.positions()[t] + 1; // causal: keys at positions 0..pos
            if (scores == null || scores.length < contextLen) {
                scores = new float[Math.max(contextLen, 64)];
            }
            int tableStart = plan.blockTableStart()[seq];
            int kvHead = h / group;
            int qBase = q.offset(t) + h * headDim;
            float max = Float.NEGATIVE_INFINITY;
            for (int pos = 0; pos < contextLen; pos++) {
                int slot = plan.blockTable()[tableStart + pos / blockSize] * blockSize + pos % blockSize;
                int at = slot * rowFloats + kvHead * headDim;
                float dot;
                if (keys != null) {
                    dot = VectorMath.dot(q.data(), qBase, keys, at, headDim);
                } else if (keyBytes != null) {
                    dot = keyScales[slot * kvHeads + kvHead] * Int8Rows.dot(q.data(), qBase, keyBytes, at, headDim);
                } else {
                    dot = HalfRows.dot(q.data(), qBase, keyHalves, at, headDim, bfloat16);
                }
                float s = dot * scale;
                scores[pos] = s;
                max = Math.max(max, s);
            }
            float sum = 0;
            for (int pos = 0; pos < contextLen; pos++) {
                float e = (float) Math.exp(scores[pos] - max);
                scores[pos] = e;
                sum += e;
            }
            int oBase = out.offset(t) + h * headDim;
            java.util.Arrays.fill(out.data(), oBase, oBase + headDim, 0f);
            for (int pos = 0; pos < contextLen; pos++) {
                int slot = plan.blockTable()[tableStart + pos / blockSize] * blockSize + pos % blockSize;
                int at = slot * rowFloats + kvHead * headDim;
                if (values != null) {
                    VectorMath.axpy(scores[pos] / sum, values, at, out.data(), oBase, headDim);
                } else if (valueBytes != null) {
                    Int8Rows.axpy(scores[pos] / sum * valueScales[slot * kvHeads + kvHead], valueBytes, at, out.data(), oBase, headDim);
                } else {
                    HalfRows.axpy(scores[pos] / sum, valueHalves, at, out.data(), oBase, headDim, bfloat16);
                }
            }
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up) {
        HostTensor g = host(gate);
        HostTensor u = host(up);
        float[] gd = g.data();
        float[] ud = u.data();
        int n = g.rows() * g.cols();
        for (int i = 0; i < n; i++) {
            float x = gd[i];
            // NOTE: written as llama2.c does (x * (1 / (1 + e^-x)) * up) so the golden outputs match bit for bit.
            gd[i] = x * (1f / (1f + (float) Math.exp(-x))) * ud[i];
        }
    }

    @Override
    public void add(Tensor x, Tensor y) {
        HostTensor a = host(x);
        HostTensor b = host(y);
        VectorMath.addInPlace(a.data(), 0, b.data(), 0, a.rows() * a.cols());
    }

    @Override
    public void gatherRows(Tensor out, Tensor x, int[] rows) {
        HostTensor o = host(out);
        HostTensor in = host(x);
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(in.data(), in.offset(rows[i]), o.data(), o.offset(i), in.cols());
        }
    }

    @Override
    public void copyRowToHost(Tensor t, int row, float[] out) {
        HostTensor h = host(t);
        System.arraycopy(h.data(), h.offset(row), out, 0, h.cols());
    }

    /** A matmul's input {@code [T, w.cols]} and output {@code [T, w.rows]}. */
    private static void requireShapes(HostTensor out, HostTensor in, WeightMatrix w) {
        requireCols(in, w.cols(), "matmul input of " + w.name());
        requireCols(out, w.rows(), "matmul output of " + w.name());
    }

    private static void requireCols(HostTensor t, int cols, String what) {
        if (t.cols() != cols) {
            throw new IllegalArgumentException(what + ": expected " + cols + " columns, got " + t.cols());
        }
    }

    @Override
    public void close() {
        // The worker pool is process-wide (Parallel). The tiles go: a model uploaded here must not
        // be used after its backend closes (its products would then throw IllegalStateException).
        weights.close();
    }

    /** Vector API helpers over float arrays, shared by the ops above. */
    static final class VectorMath {
        private VectorMath() {
        }

        static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
            FloatVector acc = FloatVector.zero(F);
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += F.length()) {
                acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
            }
            float sum = LaneSums.sum(acc);
            for (; i < n; i++) {
                sum += a[aOff + i] * b[bOff + i];
            }
            return sum;
        }

        /** {@code y[yOff + i] += alpha * x[xOff + i]}. */
        static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
            int i = 0;
            FloatVector va = FloatVector.broadcast(F, alpha);
            for (int bound = F.loopBound(n); i < bound; i += F.length()) {
                FloatVector.fromArray(F, x, xOff + i).fma(va, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
            }
            for (; i < n; i++) {
                y[yOff + i] += alpha * x[xOff + i];
            }
        }

        /** {@code out[i] = x[i] * scale * w[i]}. */
        static void scaleMultiply(float[] x, int xOff, float[] w, int wOff, float scale, float[] out, int outOff, int n) {
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += F.length()) {
                FloatVector.fromArray(F, x, xOff + i).mul(scale).mul(FloatVector.fromArray(F, w, wOff + i)).intoArray(out, outOff + i);
            }
            for (; i < n; i++) {
                out[outOff + i] = x[xOff + i] * scale * w[wOff + i];
            }
        }

        static void addInPlace(float[] x, int xOff, float[] y, int yOff, int n) {
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += F.length()) {
                FloatVector.fromArray(F, x, xOff + i).add(FloatVector.fromArray(F, y, yOff + i)).intoArray(x, xOff + i);
            }
            for (; i < n; i++) {
                x[xOff + i] += y[yOff + i];
            }
        }
    }
}
