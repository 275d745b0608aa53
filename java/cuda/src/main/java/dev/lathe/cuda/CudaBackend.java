package dev.lathe.cuda;

import dev.lathe.bindings.LatheNative;
import dev.lathe.core.backend.Backend;
import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The Backend SPI on one NVIDIA GPU through liblathe_cuda.so: activations are f32
 * {@link DeviceTensor}s from a caching {@link DeviceMemoryPool}; weights are repacked once into
 * the kernels' layouts and copied once ({@link WeightRepacker}); the plan's int arrays are copied
 * once per step ({@link DeviceArrays}); every op is queued on one stream, and only
 * {@link #copyRowToHost} waits for the device. Host-side checks (token ids, slots, block ids)
 * run before a launch, so bad input is an exception naming it, not a device fault.
 *
 * <p>Decode steps may run as CUDA graphs ({@link DecodeGraphs}, off by default): while one is
 * being recorded, allocations and host-array uploads go to the graph ({@link DecodeGraph}) and
 * the ops that need the host mid-step refuse ({@link #notRecording}).
 *
 * <p>Attention of prefill-heavy steps may run on the tensor-core flash prefill kernel
 * ({@link FlashPrefill}, off by default); otherwise every step runs the paged kernel.
 */
public final class CudaBackend implements Backend {
    private static final long DEFAULT_POOL_SOFT_LIMIT = 1L << 30;
    /** Tokens from which 2:4 weights run on the sparse tensor cores (kMmaMinTokens of the dense path). */
    static final int SPARSE24_MMA_MIN_TOKENS = 8;

    private final CudaDevice device;
    private final DeviceMemoryPool pool;
    private final DeviceArrays arrays;
    private final List<MemorySegment> weightBuffers = new ArrayList<>();
    private final Map<WeightMatrix, DeviceWeight> uploaded = new IdentityHashMap<>();
    private final DecodeGraphs graphs;  // null when decode graphs are off
    private final boolean flashPrefill; // prefill-heavy steps' attention on the flash kernel
    private long flashPrefillLaunches;  // steps whose attention ran it, for tests and benchmarks
    private DecodeGraph recording;      // the graph being captured, else null
    private int contextBound;           // > 0 during a graph's step: attention's grid bound
    private boolean closed;

    private CudaBackend(CudaDevice device, boolean decodeGraphs, boolean flashPrefill) {
        this.device = device;
        this.flashPrefill = flashPrefill;
        this.pool = new DeviceMemoryPool(device.context, DEFAULT_POOL_SOFT_LIMIT);
        this.arrays = new DeviceArrays(pool, device.stream);
        this.graphs = decodeGraphs
                ? new DecodeGraphs(this, device.context, device.stream, pool, DecodeBuckets.DEFAULT) : null;
    }

    /**
     * Opens GPU {@code ordinal}; throws with the reason when it cannot (library, driver, device).
     * Decode graphs follow {@code -Dlathe.cuda.graphs} / {@code LATHE_CUDA_GRAPHS}, the flash
     * prefill kernel {@code -Dlathe.cuda.flashPrefill} / {@code LATHE_CUDA_FLASH_PREFILL} (both on unless set off).
     */
    public static CudaBackend open(int ordinal) {
        return open(ordinal, DecodeGraphs.enabled());
    }

    /** Opens GPU {@code ordinal} with decode steps captured as CUDA graphs or not (flash prefill by its switch). */
    public static CudaBackend open(int ordinal, boolean decodeGraphs) {
        return open(ordinal, decodeGraphs, FlashPrefill.enabled());
    }

    /** Opens GPU {@code ordinal} with decode graphs and the flash prefill kernel on or off. */
    public static CudaBackend open(int ordinal, boolean decodeGraphs, boolean flashPrefill) {
        return new CudaBackend(CudaDevice.open(ordinal), decodeGraphs, flashPrefill);
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String describe() {
        return device.describe() + (graphs != null ? ", decode graphs on" : "")
                + (flashPrefill ? ", flash prefill on" : "");
    }

    /** Waits for all queued work (benchmarks; the ops never need it). */
    public void synchronize() {
        notRecording("synchronize");
        device.synchronize();
    }

    // ---- decode graphs -----------------------------------------------------------------------

    @Override
    public Tensor forwardStep(BatchPlan plan, KvCache cache, Object key, Function<BatchPlan, Tensor> step) {
        if (graphs == null || recording != null) {
            return step.apply(plan);
        }
        return graphs.run(plan, cache, key, step);
    }

    /** How many decode steps were captured, replayed and run eagerly; null when graphs are off. */
    public DecodeGraphs.Stats decodeGraphStats() {
        return graphs == null ? null : graphs.stats();
    }

    /** Sends allocations and uploads to {@code graph} (null: back to the pool) with attention's bound. */
    void recordInto(DecodeGraph graph, int bound) {
        this.recording = graph;
        this.contextBound = bound;
    }

    /** Attention's grid bound for an eager step that must match a graph's shapes (0: none). */
    void contextBound(int bound) {
        this.contextBound = bound;
    }

    /** Refuses an op that needs the host in the middle of a step while one is being captured. */
    private void notRecording(String op) {
        if (recording != null) {
            throw new IllegalStateException(op + " needs the host in the middle of the step, so the step cannot be "
                    + "captured as a CUDA graph");
        }
    }

    private long ints(int[] values, Runnable check) {
        return recording != null ? recording.ints(values, check) : arrays.ints(values, check);
    }

    private long floats(float[] values) {
        return recording != null ? recording.floats(values) : arrays.floats(values);
    }

    // ---- memory ----------------------------------------------------------------------------

    @Override
    public Tensor allocate(int rows, int cols) {
        if (rows < 0 || cols < 1) {
            throw new IllegalArgumentException("tensor shape [" + rows + ", " + cols + "] is invalid");
        }
        if (recording != null) {
            return recording.allocate(rows, cols);
        }
        long bytes = Math.multiplyExact((long) rows * cols, 4L);
        DeviceMemoryPool.Block block = pool.allocate(Math.max(bytes, 4));
        DeviceTensor t = new DeviceTensor(rows, cols, block);
        if (bytes > 0) {
            LatheNative.memset(device.stream, t.address, 0, bytes);
        }
        return t;
    }

    /** A device tensor holding {@code values} ({@code [rows, cols]} row-major): tests and benchmarks. */
    public Tensor upload(float[] values, int rows, int cols) {
        if ((long) rows * cols != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill [" + rows + ", " + cols + "]");
        }
        notRecording("upload");
        DeviceTensor t = (DeviceTensor) allocate(rows, cols);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, values.length));
            MemorySegment.copy(values, 0, host, ValueLayout.JAVA_FLOAT, 0, values.length);
            LatheNative.memcpyH2d(device.stream, t.address, host, 4L * values.length);
        }
        return t;
    }

    /** The whole tensor in host memory, row-major (waits for the device). */
    public float[] download(Tensor tensor) {
        notRecording("download");
        DeviceTensor t = device(tensor, "download");
        float[] out = new float[Math.toIntExact(t.elements())];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, out.length));
            LatheNative.memcpyD2h(device.stream, host, t.address, 4L * out.length);
            MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, out, 0, out.length);
        }
        return out;
    }

    @Override
    public WeightMatrix upload(WeightMatrix weight) {
        if (weight instanceof DeviceWeight d) {
            return d;
        }
        DeviceWeight done = uploaded.get(weight);
        if (done != null) {
            return done;
        }
        notRecording("uploading weight " + weight.name());
        DeviceWeight d;
        KernelLayout layout = WeightRepacker.layoutFor(weight);
        if (layout == KernelLayout.INT4_GROUP) {
            DeviceInt4Weight w = upload(Int4Weights.of(weight));
            d = new DeviceWeight(weight, layout, w.qweight(), w.scales(), w.zeros(), w.group());
        } else if (layout == KernelLayout.NF4) {
            DeviceNf4Weight w = upload(Nf4Weights.of(weight));
            d = new DeviceWeight(weight, layout, w.qweight(), w.absmax());
        } else if (layout == KernelLayout.SPARSE24) {
            DeviceSparse24Weight w = upload(Sparse24Weights.of(weight));
            d = new DeviceWeight(weight, layout, w.values(), w.meta(), w.mmaFragments(), 0, w.mmaMeta());
        } else try (Arena arena = Arena.ofConfined()) {
            RepackedWeight packed = WeightRepacker.repack(weight, arena);
            long values = copyToDevice(packed.values(), weight.name());
            long scales = packed.layout().hasScales() ? copyToDevice(packed.scales(), weight.name()) : 0;
            d = new DeviceWeight(weight, packed.layout(), values, scales);
        }
        uploaded.put(weight, d);
        return d;
    }

    private long copyToDevice(MemorySegment host, String what) {
        long bytes = host.byteSize();
        if (!host.isNative()) {
            // A heap segment (a matrix built in memory, not mapped from a file) cannot cross into C.
            try (Arena staging = Arena.ofConfined()) {
                MemorySegment copy = staging.allocate(Math.max(bytes, 1), 16);
                MemorySegment.copy(host, 0, copy, 0, bytes);
                return copyToDevice(copy, what);
            }
        }
        MemorySegment buffer;
        try {
            buffer = LatheNative.bufferAlloc(device.context, Math.max(bytes, 16));
        } catch (RuntimeException e) {
            throw new IllegalStateException("uploading " + what + " (" + bytes + " bytes) to the GPU: " + e.getMessage(), e);
        }
        weightBuffers.add(buffer);
        long address = LatheNative.bufferDevicePointer(buffer);
        LatheNative.memcpyH2d(device.stream, address, host, bytes);
        // NOTE: a pageable host segment is staged before memcpy returns, but the arena that holds
        // repacked bytes closes right after: synchronize so nothing can still be reading it.
        device.synchronize();
        return address;
    }

    /** A group-wise INT4 weight on the device: the three kernel-layout arrays of {@link Int4Weights}. */
    public record DeviceInt4Weight(int rows, int cols, int group, long qweight, long scales, long zeros) {
    }

    /** Copies an INT4 weight to the device once; its memory lives until the backend closes. */
    public DeviceInt4Weight upload(Int4Weights w) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment q = arena.allocate(ValueLayout.JAVA_INT, w.qweight().length);
            MemorySegment.copy(w.qweight(), 0, q, ValueLayout.JAVA_INT, 0, w.qweight().length);
            MemorySegment s = arena.allocate(ValueLayout.JAVA_SHORT, w.scales().length);
            MemorySegment.copy(w.scales(), 0, s, ValueLayout.JAVA_SHORT, 0, w.scales().length);
            MemorySegment z = arena.allocate(ValueLayout.JAVA_BYTE, w.zeros().length);
            MemorySegment.copy(w.zeros(), 0, z, ValueLayout.JAVA_BYTE, 0, w.zeros().length);
            return new DeviceInt4Weight(w.rows(), w.cols(), w.group(), copyToDevice(q, "int4 qweight"),
                    copyToDevice(s, "int4 scales"), copyToDevice(z, "int4 zeros"));
        }
    }

    /** {@code out[t, r] = sum_i W[r, i] * x[t, i]} for a group-wise INT4 weight. */
    public void matmul(Tensor out, Tensor x, DeviceInt4Weight w) {
        matmul(out, x, "int4 weight", KernelLayout.INT4_GROUP, w.rows(), w.cols(), w.qweight(), w.scales(), w.zeros(),
                w.group(), 0);
    }

    /** An NF4 weight on the device: codes and absmax arrays of {@link Nf4Weights}. */
    public record DeviceNf4Weight(int rows, int cols, long qweight, long absmax) {
    }

    /** Copies an NF4 weight to the device once; its memory lives until the backend closes. */
    public DeviceNf4Weight upload(Nf4Weights w) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment q = arena.allocate(ValueLayout.JAVA_INT, w.qweight().length);
            MemorySegment.copy(w.qweight(), 0, q, ValueLayout.JAVA_INT, 0, w.qweight().length);
            MemorySegment a = arena.allocate(ValueLayout.JAVA_FLOAT, w.absmax().length);
            MemorySegment.copy(w.absmax(), 0, a, ValueLayout.JAVA_FLOAT, 0, w.absmax().length);
            return new DeviceNf4Weight(w.rows(), w.cols(), copyToDevice(q, "nf4 codes"), copyToDevice(a, "nf4 absmax"));
        }
    }

    /** {@code out[t, r] = sum_i W[r, i] * x[t, i]} for an NF4 weight. */
    public void matmul(Tensor out, Tensor x, DeviceNf4Weight w) {
        matmul(out, x, "nf4 weight", KernelLayout.NF4, w.rows(), w.cols(), w.qweight(), w.absmax(), 0, 0, 0);
    }

    /**
     * A 2:4 sparse weight on the device: values and metadata arrays of {@link Sparse24Weights} (the
     * GEMV's), and when cols is a multiple of 64 the same weight reordered for the sparse tensor
     * cores ({@link Sparse24MmaLayout}; else both 0).
     */
    public record DeviceSparse24Weight(int rows, int cols, long values, long meta, long mmaFragments, long mmaMeta) {
    }

    /** Copies a 2:4 sparse weight to the device once; its memory lives until the backend closes. */
    public DeviceSparse24Weight upload(Sparse24Weights w) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_SHORT, w.values().length);
            MemorySegment.copy(w.values(), 0, v, ValueLayout.JAVA_SHORT, 0, w.values().length);
            MemorySegment m = arena.allocate(ValueLayout.JAVA_INT, w.meta().length);
            MemorySegment.copy(w.meta(), 0, m, ValueLayout.JAVA_INT, 0, w.meta().length);
            long mmaFragments = 0;
            long mmaMeta = 0;
            // NOTE: the tensor-core GEMM reads its own copy (fragment order); the GEMV keeps the
            // layout it was proven with. 2:4 weights so take ~2x their bytes on the device until a
            // GEMV over the fragment layout replaces the old one.
            if (w.cols() % 64 == 0) {
                Sparse24MmaLayout mma = Sparse24MmaLayout.of(w);
                MemorySegment f = arena.allocate(ValueLayout.JAVA_INT, mma.fragments().length);
                MemorySegment.copy(mma.fragments(), 0, f, ValueLayout.JAVA_INT, 0, mma.fragments().length);
                MemorySegment e = arena.allocate(ValueLayout.JAVA_INT, mma.meta().length);
                MemorySegment.copy(mma.meta(), 0, e, ValueLayout.JAVA_INT, 0, mma.meta().length);
                mmaFragments = copyToDevice(f, "2:4 tensor-core fragments");
                mmaMeta = copyToDevice(e, "2:4 tensor-core metadata");
            }
            return new DeviceSparse24Weight(w.rows(), w.cols(), copyToDevice(v, "2:4 values"), copyToDevice(m, "2:4 meta"),
                    mmaFragments, mmaMeta);
        }
    }

    /** {@code out[t, r] = sum_i W[r, i] * x[t, i]} for a 2:4 sparse weight. */
    public void matmul(Tensor out, Tensor x, DeviceSparse24Weight w) {
        matmul(out, x, "2:4 weight", KernelLayout.SPARSE24, w.rows(), w.cols(), w.values(), w.meta(), w.mmaFragments(), 0,
                w.mmaMeta());
    }

    @Override
    public KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        return allocateKvCache(layers, numBlocks, blockSize, kvHeads, headDim, KvDtype.F32);
    }

    /** f32, f16 or bf16 pools; any other dtype is refused, naming it, before anything is allocated. */
    @Override
    public KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
        notRecording("allocateKvCache");
        return new DeviceKvCache(device, new KvPoolShape(layers, numBlocks, blockSize, kvHeads, headDim, dtype));
    }

    // ---- ops ---------------------------------------------------------------------------------

    private static DeviceTensor device(Tensor t, String op) {
        if (t instanceof DeviceTensor d) {
            return d;
        }
        throw new IllegalArgumentException(op + ": tensor " + t + " does not belong to the CUDA backend");
    }

    private DeviceWeight weight(WeightMatrix w, String op) {
        if (w instanceof DeviceWeight d) {
            return d;
        }
        // A weight that skipped upload (a caller's own matrix): upload it now, once.
        return (DeviceWeight) upload(w);
    }

    private static void requireCols(DeviceTensor t, long cols, String what) {
        if (t.cols() != cols) {
            throw new IllegalArgumentException(what + ": expected " + cols + " columns, got " + t.cols());
        }
    }

    private static void requireRows(DeviceTensor t, long rows, String what) {
        if (t.rows() < rows) {
            throw new IllegalArgumentException(what + ": expected at least " + rows + " rows, got " + t.rows());
        }
    }

    @Override
    public void embed(Tensor out, WeightMatrix table, int[] tokens) {
        DeviceTensor o = device(out, "embed");
        DeviceWeight w = weight(table, "embed");
        requireCols(o, w.cols(), "embed");
        requireRows(o, tokens.length, "embed");
        long tokensOnDevice = ints(tokens, () -> {
            for (int token : tokens) {
                if (token < 0 || token >= w.rows()) {
                    throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, " + w.rows() + ")");
                }
            }
        });
        if (w.layout.code < 0) {
            // NOTE: the 4-bit layouts have no gather kernel; the few rows a step asks for are
            // decoded on the host from the file's bytes (the same values) and copied up.
            notRecording("embedding from a 4-bit table");
            float[] rows = new float[tokens.length * w.cols()];
            for (int i = 0; i < tokens.length; i++) {
                w.dequantizeRow(tokens[i], rows, i * w.cols());
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, rows.length));
                MemorySegment.copy(rows, 0, host, ValueLayout.JAVA_FLOAT, 0, rows.length);
                LatheNative.memcpyH2d(device.stream, o.address, host, 4L * rows.length);
            }
            return;
        }
        LatheNative.embed(device.stream, w.layout.code, w.values, w.scales, w.rows(), w.cols(), tokensOnDevice,
                tokens.length, o.address);
    }

    @Override
    public void rmsNorm(Tensor out, Tensor x, WeightMatrix weight, float eps) {
        DeviceTensor o = device(out, "rmsNorm");
        DeviceTensor in = device(x, "rmsNorm");
        DeviceWeight w = weight(weight, "rmsNorm");
        requireCols(o, in.cols(), "rmsNorm output");
        requireRows(o, in.rows(), "rmsNorm output");
        if (w.vectorLength() != in.cols() || w.layout != KernelLayout.F32) {
            throw new IllegalArgumentException("rmsNorm weight " + w.name() + " must be a vector of " + in.cols() + " values");
        }
        LatheNative.rmsnorm(device.stream, o.address, in.address, w.values, in.rows(), in.cols(), eps);
    }

    @Override
    public void matmul(Tensor out, Tensor x, WeightMatrix w) {
        DeviceWeight dw = weight(w, "matmul");
        matmul(out, x, dw.name(), dw.layout, dw.rows(), dw.cols(), dw.values, dw.scales, dw.zeros, dw.group, dw.mmaMeta);
    }

    /**
     * {@code out = x . W^T} for W {@code [rows, cols]} in {@code layout} at the given device
     * arrays ({@link DeviceWeight}'s fields): the one place each layout meets its entry point.
     */
    private void matmul(Tensor out, Tensor x, String name, KernelLayout layout, int rows, int cols, long values,
                        long scales, long zeros, int group, long mmaMeta) {
        DeviceTensor o = device(out, "matmul");
        DeviceTensor in = device(x, "matmul");
        requireCols(in, cols, "matmul input of " + name);
        requireCols(o, rows, "matmul output of " + name);
        requireRows(o, in.rows(), "matmul output of " + name);
        switch (layout) {
            case INT4_GROUP -> LatheNative.matmulInt4(device.stream, values, scales, zeros, rows, cols, group, in.address,
                    in.rows(), o.address);
            case NF4 -> LatheNative.matmulNf4(device.stream, values, scales, rows, cols, in.address, in.rows(), o.address);
            // From SPARSE24_MMA_MIN_TOKENS tokens the sparse tensor cores, as the dense layouts'
            // tensor-core GEMM takes over from the GEMV at 8 (zeros: the fragment-ordered copy).
            case SPARSE24 -> {
                if (in.rows() >= SPARSE24_MMA_MIN_TOKENS && zeros != 0 && mmaMeta != 0) {
                    LatheNative.matmulSparse24Mma(device.stream, zeros, mmaMeta, rows, cols, in.address, in.rows(),
                            o.address);
                } else {
                    LatheNative.matmulSparse24(device.stream, values, scales, rows, cols, in.address, in.rows(),
                            o.address);
                }
            }
            default -> LatheNative.matmul(device.stream, layout.code, values, scales, rows, cols, in.address, in.rows(),
                    o.address);
        }
    }

    @Override
    public void addBias(Tensor x, WeightMatrix bias) {
        DeviceTensor in = device(x, "addBias");
        DeviceWeight b = weight(bias, "addBias");
        if (b.vectorLength() != in.cols() || b.layout != KernelLayout.F32) {
            throw new IllegalArgumentException("bias " + b.name() + " must be a vector of " + in.cols() + " values");
        }
        LatheNative.addBias(device.stream, in.address, b.values, in.rows(), in.cols());
    }

    @Override
    public void rope(Tensor x, int heads, int headDim, int[] positions, float[] invFreq, RopeStyle style) {
        DeviceTensor in = device(x, "rope");
        requireCols(in, (long) heads * headDim, "rope");
        requireRows(in, positions.length, "rope");
        if (headDim % 2 != 0 || invFreq.length < headDim / 2) {
            throw new IllegalArgumentException("rope: headDim " + headDim + " must be even with " + headDim / 2
                    + " frequencies (got " + invFreq.length + ")");
        }
        long pos = ints(positions, () -> { });
        long freq = floats(invFreq);
        int code = style == RopeStyle.INTERLEAVED ? 0 : 1;
        LatheNative.rope(device.stream, in.address, pos, freq, positions.length, heads, headDim, code);
    }

    @Override
    public void writeKv(KvCache cache, int layer, Tensor k, Tensor v, int[] slotMapping) {
        DeviceKvCache c = kv(cache);
        DeviceTensor kt = device(k, "writeKv");
        DeviceTensor vt = device(v, "writeKv");
        long rowValues = (long) c.kvHeads() * c.headDim();
        requireCols(kt, rowValues, "K");
        requireCols(vt, rowValues, "V");
        requireRows(kt, slotMapping.length, "K");
        requireRows(vt, slotMapping.length, "V");
        checkLayer(c, layer);
        long slots = c.slots();
        long mapping = ints(slotMapping, () -> {
            for (int slot : slotMapping) {
                if (slot < 0 || slot >= slots) {
                    throw new IllegalArgumentException("KV slot " + slot + " is outside the cache's " + slots + " slots");
                }
            }
        });
        LatheNative.writeKv(device.stream, c.dtypeCode(), c.keys[layer], c.values[layer], kt.address, vt.address,
                mapping, slotMapping.length, rowValues, slots);
    }

    @Override
    public void attention(Tensor out, Tensor q, KvCache cache, int layer, BatchPlan plan, int heads, float scale) {
        DeviceKvCache c = kv(cache);
        boolean flash = flashPrefill && recording == null && heads % c.kvHeads() == 0
                && FlashPrefill.worthIt(plan, c.headDim(), heads / c.kvHeads());
        attention(out, q, c, layer, plan, heads, scale, flash);
    }

    /**
     * The same attention on the flash prefill kernel whatever the switch and the plan (parity tests,
     * benchmarks); its shapes must be supported ({@link FlashPrefill#supports}).
     */
    void flashAttention(Tensor out, Tensor q, KvCache cache, int layer, BatchPlan plan, int heads, float scale) {
        attention(out, q, kv(cache), layer, plan, heads, scale, true);
    }

    /** How many attention calls ran the flash prefill kernel. */
    long flashPrefillLaunches() {
        return flashPrefillLaunches;
    }

    private void attention(Tensor out, Tensor q, DeviceKvCache c, int layer, BatchPlan plan, int heads, float scale,
                           boolean flash) {
        DeviceTensor o = device(out, "attention");
        DeviceTensor qt = device(q, "attention");
        checkLayer(c, layer);
        long qCols = (long) heads * c.headDim();
        requireCols(qt, qCols, "attention q");
        requireCols(o, qCols, "attention out");
        int tokens = plan.tokenCount();
        requireRows(qt, tokens, "attention q");
        requireRows(o, tokens, "attention out");
        if (heads % c.kvHeads() != 0) {
            throw new IllegalArgumentException("attention: " + heads + " query heads do not share " + c.kvHeads() + " KV heads evenly");
        }
        if (plan.blockSize() != c.blockSize()) {
            throw new IllegalArgumentException("the plan's block size " + plan.blockSize() + " differs from the cache's "
                    + c.blockSize());
        }
        if (flash && !FlashPrefill.supports(c.headDim(), heads / c.kvHeads())) {
            throw new IllegalArgumentException("flash prefill has no kernel for headDim " + c.headDim() + " with "
                    + heads / c.kvHeads() + " query heads per KV head");
        }
        long positions = ints(plan.positions(), () -> checkWindows(plan));
        long seqStart = ints(plan.seqStart(), () -> { });
        long tableStart = ints(plan.blockTableStart(), () -> { });
        int numBlocks = c.deviceBlocks(); // the sink block's id included (DeviceKvCache)
        long table = ints(plan.blockTable(), () -> {
            for (int b : plan.blockTable()) {
                if (b < 0 || b >= numBlocks) {
                    throw new IllegalArgumentException("block table holds block " + b + ", outside the cache's " + numBlocks + " blocks");
                }
            }
        });
        if (flash) {
            LatheNative.flashPrefill(device.stream, c.dtypeCode(), o.address, qt.address, c.keys[layer],
                    c.values[layer], positions, seqStart, tableStart, table, tokens, plan.sequenceCount(), heads,
                    c.kvHeads(), c.headDim(), c.blockSize(), numBlocks, Math.max(1, FlashPrefill.longestChunk(plan)),
                    scale);
            flashPrefillLaunches++;
            return;
        }
        // NOTE: in a graph's step the grid is sized by the graph's bound, so that the recorded
        // launch covers every window up to it (the kernel reads the real ones from positions).
        int maxContext = Math.max(1, contextBound);
        for (int pos : plan.positions()) {
            maxContext = Math.max(maxContext, pos + 1);
        }
        LatheNative.pagedAttention(device.stream, c.dtypeCode(), o.address, qt.address, c.keys[layer], c.values[layer],
                positions,
                seqStart, tableStart, table, tokens, plan.sequenceCount(), heads, c.kvHeads(), c.headDim(),
                c.blockSize(), numBlocks, maxContext, scale);
    }

    // Each token's causal window must be covered by its sequence's blocks.
    private static void checkWindows(BatchPlan plan) {
        int[] seqStart = plan.seqStart();
        for (int s = 0; s < plan.sequenceCount(); s++) {
            int blocks = plan.blockTableStart()[s + 1] - plan.blockTableStart()[s];
            for (int t = seqStart[s]; t < seqStart[s + 1]; t++) {
                int pos = plan.positions()[t];
                if (pos < 0 || pos / plan.blockSize() >= blocks) {
                    throw new IllegalArgumentException("token " + t + " at position " + pos + " needs block "
                            + (pos / plan.blockSize()) + " but sequence " + s + " has " + blocks + " blocks");
                }
            }
        }
    }

    private static DeviceKvCache kv(KvCache cache) {
        if (cache instanceof DeviceKvCache c) {
            return c;
        }
        throw new IllegalArgumentException("KV cache " + cache + " does not belong to the CUDA backend");
    }

    private static void checkLayer(DeviceKvCache c, int layer) {
        if (layer < 0 || layer >= c.layers()) {
            throw new IllegalArgumentException("layer " + layer + " is outside the cache's " + c.layers() + " layers");
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up) {
        DeviceTensor g = device(gate, "swiglu");
        DeviceTensor u = device(up, "swiglu");
        sameShape(g, u, "swiglu");
        LatheNative.swiglu(device.stream, g.address, u.address, g.elements());
    }

    @Override
    public void add(Tensor x, Tensor y) {
        DeviceTensor a = device(x, "add");
        DeviceTensor b = device(y, "add");
        sameShape(a, b, "add");
        LatheNative.add(device.stream, a.address, b.address, a.elements());
    }

    private static void sameShape(DeviceTensor a, DeviceTensor b, String op) {
        if (a.rows() != b.rows() || a.cols() != b.cols()) {
            throw new IllegalArgumentException(op + ": shapes [" + a.rows() + ", " + a.cols() + "] and [" + b.rows() + ", "
                    + b.cols() + "] differ");
        }
    }

    @Override
    public void gatherRows(Tensor out, Tensor x, int[] rows) {
        DeviceTensor o = device(out, "gatherRows");
        DeviceTensor in = device(x, "gatherRows");
        requireCols(o, in.cols(), "gatherRows");
        requireRows(o, rows.length, "gatherRows");
        long r = ints(rows, () -> {
            for (int row : rows) {
                if (row < 0 || row >= in.rows()) {
                    throw new IllegalArgumentException("gatherRows: row " + row + " is outside [0, " + in.rows() + ")");
                }
            }
        });
        LatheNative.gatherRows(device.stream, o.address, in.address, r, rows.length, in.rows(), in.cols());
    }

    /** {@code out[r] = argmax x[r, :]} for every row (greedy sampling on the device). */
    public int[] argmax(Tensor x) {
        notRecording("argmax");
        DeviceTensor in = device(x, "argmax");
        if (in.rows() == 0) {
            return new int[0];
        }
        DeviceMemoryPool.Block block = pool.allocate(Math.max(4, 4L * in.rows()));
        try (Arena arena = Arena.ofConfined()) {
            LatheNative.argmax(device.stream, block.address, in.address, in.rows(), in.cols());
            MemorySegment host = arena.allocate(ValueLayout.JAVA_INT, in.rows());
            LatheNative.memcpyD2h(device.stream, host, block.address, 4L * in.rows());
            return host.toArray(ValueLayout.JAVA_INT);
        } finally {
            block.release();
        }
    }

    /**
     * Speculative verification on the device for {@code seeds.length} sequences of {@code k} drafts
     * each (lathe_spec_verify; {@link SpecVerifyReference} is its CPU reference).
     *
     * @param targetLogits {@code [B * (k + 1), vocab]} the target's logits at each sequence's k+1 positions
     * @param draftProbs   {@code [B * k, vocab]} the draft's probabilities, or null when greedy
     * @param draftTokens  {@code [B * k]}
     * @param seeds        {@code [B]} per-request Philox keys
     * @param offsets      {@code [B]} Philox counter bases (advance them per step)
     * @return {@code {accepted[B], nextToken[B]}}
     */
    @Override
    public int[] verifyDraft(Tensor logits, int[] draftTokens, float[][] draftProbs, long seed, long step,
                             float temperature, int topK, float topP) {
        int k = draftTokens.length;
        int vocab = logits.cols();
        Tensor q = null;
        if (temperature > 0) {
            // q [k, vocab]: the draft's rows, or one-hot rows for a deterministic drafter.
            float[] rows = new float[k * vocab];
            for (int i = 0; i < k; i++) {
                if (draftProbs == null) {
                    rows[i * vocab + draftTokens[i]] = 1f;
                } else {
                    System.arraycopy(draftProbs[i], 0, rows, i * vocab, vocab);
                }
            }
            q = upload(rows, k, vocab);
        }
        int[][] result = verifySpeculative(logits, q, draftTokens, new long[] {seed}, new long[] {step}, k, temperature,
                topK, topP);
        return new int[] {result[0][0], result[1][0]};
    }

    public int[][] verifySpeculative(Tensor targetLogits, Tensor draftProbs, int[] draftTokens, long[] seeds,
                                     long[] offsets, int k, float temperature, int topK, float topP) {
        notRecording("verifySpeculative");
        int batch = seeds.length;
        DeviceTensor logits = device(targetLogits, "verifySpeculative");
        int vocab = logits.cols();
        if (offsets.length != batch || draftTokens.length != batch * k || logits.rows() != batch * (k + 1)) {
            throw new IllegalArgumentException("verifySpeculative: " + batch + " sequences of " + k + " drafts need "
                    + batch * (k + 1) + " logit rows (got " + logits.rows() + "), " + batch * k + " draft tokens (got "
                    + draftTokens.length + ") and " + batch + " offsets (got " + offsets.length + ")");
        }
        long probs = 0;
        if (draftProbs != null) {
            DeviceTensor q = device(draftProbs, "verifySpeculative");
            if (q.rows() != batch * k || q.cols() != vocab) {
                throw new IllegalArgumentException("verifySpeculative: draft probabilities must be [" + batch * k + ", "
                        + vocab + "], got [" + q.rows() + ", " + q.cols() + "]");
            }
            probs = q.address;
        } else if (temperature > 0 && k > 0) {
            throw new IllegalArgumentException("verifySpeculative: sampling (temperature > 0) needs the draft's probabilities");
        }
        if (batch == 0) {
            return new int[][] {new int[0], new int[0]};
        }
        long tokens = ints(draftTokens.length == 0 ? new int[1] : draftTokens, () -> { });
        DeviceMemoryPool.Block keys = pool.allocate(16L * batch);
        DeviceMemoryPool.Block results = pool.allocate(8L * batch);
        DeviceTensor scratch = (DeviceTensor) allocate(batch, vocab);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ValueLayout.JAVA_LONG, 2L * batch);
            MemorySegment.copy(seeds, 0, host, ValueLayout.JAVA_LONG, 0, batch);
            MemorySegment.copy(offsets, 0, host, ValueLayout.JAVA_LONG, 8L * batch, batch);
            LatheNative.memcpyH2d(device.stream, keys.address, host, 16L * batch);
            LatheNative.specVerify(device.stream, logits.address, probs, tokens, keys.address, keys.address + 8L * batch,
                    results.address, results.address + 4L * batch, scratch.address, batch, k, vocab, temperature, topK,
                    topP);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT, 2L * batch);
            LatheNative.memcpyD2h(device.stream, out, results.address, 8L * batch);
            int[] all = out.toArray(ValueLayout.JAVA_INT);
            return new int[][] {java.util.Arrays.copyOf(all, batch), java.util.Arrays.copyOfRange(all, batch, 2 * batch)};
        } finally {
            keys.release();
            results.release();
        }
    }

    @Override
    public void copyRowToHost(Tensor t, int row, float[] out) {
        notRecording("copyRowToHost");
        DeviceTensor d = device(t, "copyRowToHost");
        if (row < 0 || row >= d.rows()) {
            throw new IllegalArgumentException("row " + row + " is outside [0, " + d.rows() + ")");
        }
        if (out.length < d.cols()) {
            throw new IllegalArgumentException("copyRowToHost: out holds " + out.length + " floats, the row " + d.cols());
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, d.cols());
            LatheNative.memcpyD2h(device.stream, host, d.address + 4L * row * d.cols(), 4L * d.cols());
            MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, out, 0, d.cols());
        }
    }

    /** The device, for benchmarks: events are recorded on its stream. */
    MemorySegment stream() {
        return device.stream;
    }

    MemorySegment context() {
        return device.context;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (graphs != null) {
                graphs.close();
            }
            device.synchronize();
            arrays.clear();
            pool.close();
            for (MemorySegment b : weightBuffers) {
                LatheNative.bufferFree(b);
            }
            weightBuffers.clear();
            uploaded.clear();
        } finally {
            device.close();
        }
    }
}
