package dev.lathe.cuda;

import dev.lathe.bindings.LatheNative;
import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Times the CUDA kernels with CUDA events and writes a Markdown table: kernel, shape, median time,
 * achieved GB/s and TFLOP/s, the roofline bound (fewest bytes over the measured device-to-device
 * copy bandwidth) and the fraction of it reached.
 *
 * <p>Method (the device README's METHOD.md): a warm-up, then {@value #SAMPLES} samples, each the
 * mean of {@value #LAUNCHES} back-to-back launches between two events (so launch gaps of kernels
 * shorter than the host's launch cost show up as time, honestly); the median sample is reported.
 * Weights rotate among enough copies to exceed the L2 cache, and are random, never zeros.
 *
 * <p>Run: {@code java -cp ... dev.lathe.cuda.KernelBenchmark OUT.md} (bench/gpu/run.sh does).
 */
public final class KernelBenchmark {
    private static final int SAMPLES = 15;
    private static final int LAUNCHES = 20;
    private static final long ROTATE_BYTES = 160L << 20; // > 2x the 50-60 MB L2 of an H100/H200

    private final CudaBackend gpu;
    private final MemorySegment start;
    private final MemorySegment end;
    private final SplittableRandom random = new SplittableRandom(7);
    private final List<String> tableRows = new ArrayList<>();
    private double bandwidth; // bytes/s, measured
    private final java.util.Map<String, Double> cublasSeconds = new java.util.HashMap<>();
    private String cublasMissing; // why the cuBLAS column is empty, when it is

    private KernelBenchmark(CudaBackend gpu) {
        this.gpu = gpu;
        this.start = LatheNative.eventCreate(gpu.context());
        this.end = LatheNative.eventCreate(gpu.context());
    }

    public static void main(String[] args) throws IOException {
        Path out = args.length > 0 ? Path.of(args[0]) : Path.of("kernel-bench.md");
        // NOTE: flash prefill off whatever its switch, so that the "paged attention" rows are always
        // the paged kernel; the flash rows call it directly.
        try (CudaBackend gpu = CudaBackend.open(0, DecodeGraphs.enabled(), false)) {
            KernelBenchmark b = new KernelBenchmark(gpu);
            b.run();
            String table = b.table();
            Files.createDirectories(out.toAbsolutePath().getParent());
            Files.writeString(out, table);
            System.out.print(table);
        }
    }

    @FunctionalInterface
    interface Launch {
        void run(int iteration);
    }

    /** Median over samples of the mean seconds per launch. */
    private double time(Launch launch) {
        for (int i = 0; i < 3; i++) {
            launch.run(i);
        }
        gpu.synchronize();
        double[] samples = new double[SAMPLES];
        int iteration = 0;
        for (int s = 0; s < SAMPLES; s++) {
            LatheNative.eventRecord(start, gpu.stream());
            for (int i = 0; i < LAUNCHES; i++) {
                launch.run(iteration++);
            }
            LatheNative.eventRecord(end, gpu.stream());
            samples[s] = LatheNative.eventElapsedMs(start, end) / 1e3 / LAUNCHES;
        }
        Arrays.sort(samples);
        return samples[SAMPLES / 2];
    }

    private void record(String kernel, String shape, double seconds, double bytes, double flops) {
        record(kernel, shape, seconds, bytes, flops, Double.NaN);
    }

    private void record(String kernel, String shape, double seconds, double bytes, double flops, double cublas) {
        double bound = bytes / bandwidth;
        String vsCublas = Double.isNaN(cublas) ? "-" : String.format("%.2f us (%.2fx)", cublas * 1e6, cublas / seconds);
        tableRows.add(String.format("| %s | %s | %.2f | %.0f | %.3f | %.2f | %.0f%% | %s |", kernel, shape, seconds * 1e6,
                bytes / seconds / 1e9, flops / seconds / 1e12, bound * 1e6, 100 * bound / seconds, vsCublas));
        System.out.println(tableRows.getLast());
    }

    /** Seconds of cuBLAS's FP16 GEMM (FP32 accumulate) for the shape, NaN when cuBLAS is unavailable. */
    private double cublas(int rows, int cols, int tokens) {
        String key = rows + "x" + cols + "x" + tokens;
        Double known = cublasSeconds.get(key);
        if (known != null) {
            return known;
        }
        if (cublasMissing != null) {
            return Double.NaN;
        }
        long weightBytes = 2L * rows * cols;
        int copies = (int) Math.max(1, Math.min(8, (ROTATE_BYTES + weightBytes - 1) / weightBytes));
        List<DeviceWeight> weights = new ArrayList<>();
        DeviceWeight x;
        try (Arena arena = Arena.ofConfined()) {
            for (int c = 0; c < copies; c++) {
                weights.add((DeviceWeight) gpu.upload(randomWeight(GgmlType.F16, rows, cols, arena)));
            }
            // At least 2 rows, so the upload keeps it F16 (one-row weights become F32 vectors).
            x = (DeviceWeight) gpu.upload(randomWeight(GgmlType.F16, Math.max(2, tokens), cols, arena));
        }
        Tensor out = gpu.allocate(tokens, rows);
        double seconds;
        try {
            seconds = time(i -> LatheNative.cublasGemmF16(gpu.stream(), weights.get(i % copies).values, x.values,
                    ((DeviceTensor) out).address, rows, cols, tokens));
        } catch (dev.lathe.bindings.LatheException e) {
            cublasMissing = e.getMessage();
            System.out.println("cuBLAS baseline unavailable: " + cublasMissing);
            return Double.NaN;
        }
        cublasSeconds.put(key, seconds);
        return seconds;
    }

    private static final int[] MATMUL_TOKENS = {1, 4, 8, 16, 32, 64, 128, 256};

    private void run() {
        measureBandwidth();
        for (GgmlType type : new GgmlType[] {GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K,
                GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F32}) {
            for (int[] shape : new int[][] {{4096, 4096}, {14336, 4096}, {4096, 14336}}) {
                // 1-4 tokens: the GEMV; 8+: the tensor-core GEMM (F32 stays on the GEMV).
                for (int tokens : MATMUL_TOKENS) {
                    matmul(type, shape[0], shape[1], tokens);
                }
            }
        }
        for (int[] shape : new int[][] {{4096, 4096}, {14336, 4096}, {4096, 14336}}) {
            for (int tokens : MATMUL_TOKENS) {
                matmulInt4(shape[0], shape[1], 128, tokens);
                matmulNf4(shape[0], shape[1], tokens);
                matmulSparse24(shape[0], shape[1], tokens); // 1-4: the GEMV; 8+: mma.sp (vs cuBLAS dense FP16)
            }
        }
        for (int[] c : new int[][] {{1, 1024}, {1, 4096}, {16, 1024}, {16, 4096}, {64, 2048}}) {
            attentionDecode(c[0], c[1], 32, 8, 128, KvDtype.F32);
        }
        // 16-bit pools: half the K/V bytes of the f32 rows above at the same shapes.
        for (KvDtype dtype : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
            for (int[] c : new int[][] {{1, 4096}, {16, 4096}, {64, 2048}}) {
                attentionDecode(c[0], c[1], 32, 8, 128, dtype);
            }
        }
        // Prefill chunks: the paged kernel (a block per token) vs the tensor-core flash kernel, the
        // 200M bench model's attention shape (16/4 heads, d=64) and a Llama-3-8B-like one.
        for (KvDtype dtype : new KvDtype[] {KvDtype.F32, KvDtype.F16}) {
            for (int[] c : new int[][] {{512, 0}, {2048, 0}, {512, 1536}}) { // new tokens, cached prefix
                for (boolean flash : new boolean[] {false, true}) {
                    attentionPrefill(c[0], c[1], 16, 4, 64, dtype, flash);
                    attentionPrefill(c[0], c[1], 32, 8, 128, dtype, flash);
                }
            }
        }
        elementwise();
        specVerify(16, 4, 128256, 0.8f, 40, 0.95f);
        specVerify(16, 4, 128256, 0f, 0, 1f);
    }

    private void specVerify(int batch, int k, int vocab, float temperature, int topK, float topP) {
        Tensor logits = gpu.upload(randomFloats(batch * (k + 1) * vocab), batch * (k + 1), vocab);
        float[] q = new float[batch * k * vocab];
        Arrays.fill(q, 1f / vocab);
        Tensor probs = gpu.upload(q, batch * k, vocab);
        int[] drafts = new int[batch * k];
        long[] seeds = new long[batch];
        long[] offsets = new long[batch];
        for (int i = 0; i < drafts.length; i++) {
            drafts[i] = random.nextInt(vocab);
        }
        double seconds = time(i -> {
            offsets[0] = i;
            gpu.verifySpeculative(logits, probs, drafts, seeds, offsets, k, temperature, topK, topP);
        });
        // Each position reads its logits (and draft row) ~34 times through L1/L2 for the filters;
        // the bytes column counts one pass (the DRAM floor).
        double bytes = 4.0 * vocab * (batch * (k + 1) + batch * k);
        record("spec verify (incl. copy to host)", "B=" + batch + " k=" + k + " V=" + vocab + " T=" + temperature
                + " topK=" + topK + " topP=" + topP, seconds, bytes, 0);
    }

    private void measureBandwidth() {
        long bytes = 1L << 30;
        Tensor a = gpu.allocate(1, (int) (bytes / 4));
        Tensor b = gpu.allocate(1, (int) (bytes / 4));
        long src = ((DeviceTensor) a).address;
        long dst = ((DeviceTensor) b).address;
        double seconds = time(i -> LatheNative.memcpyD2d(gpu.stream(), dst, src, bytes));
        bandwidth = 2.0 * bytes / seconds;
        tableRows.add(String.format("| memcpy d2d (bandwidth ceiling) | 1 GiB | %.2f | %.0f | - | - | - | - |", seconds * 1e6,
                bandwidth / 1e9));
        System.out.println(tableRows.getLast());
    }

    /** A weight of random, finite values in a ggml format (bytes made directly, no quantizer run). */
    private WeightMatrix randomWeight(GgmlType type, int rows, int cols, Arena arena) {
        long bytes = type.bytesFor(cols, "bench") * rows;
        MemorySegment data = arena.allocate(bytes, 16);
        byte[] chunk = new byte[1 << 20];
        for (long at = 0; at < bytes; at += chunk.length) {
            random.nextBytes(chunk);
            MemorySegment.copy(chunk, 0, data, ValueLayout.JAVA_BYTE, at, (int) Math.min(chunk.length, bytes - at));
        }
        ValueLayout.OfShort half = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> {
                for (long i = 0; i < bytes; i += 4) {
                    data.set(ValueLayout.JAVA_BYTE, i + 3, (byte) (data.get(ValueLayout.JAVA_BYTE, i + 3) & 0xBF));
                }
            }
            case F16, BF16 -> {
                // Clear the top exponent bit: |w| < 2, never inf or NaN.
                for (long i = 0; i < bytes; i += 2) {
                    data.set(ValueLayout.JAVA_BYTE, i + 1, (byte) (data.get(ValueLayout.JAVA_BYTE, i + 1) & 0xBF));
                }
            }
            case Q6_K -> {
                for (long b = 0; b < bytes; b += type.blockBytes) {
                    data.set(half, b + 208, Float.floatToFloat16(0.01f));
                }
            }
            case Q4_K, Q5_K -> {
                for (long b = 0; b < bytes; b += type.blockBytes) {
                    data.set(half, b, Float.floatToFloat16(0.01f));
                    data.set(half, b + 2, Float.floatToFloat16(0.01f));
                }
            }
            default -> {
                for (long b = 0; b < bytes; b += type.blockBytes) {
                    data.set(half, b, Float.floatToFloat16(0.01f));
                }
            }
        }
        return WeightMatrices.of("bench." + type + "." + rows + "x" + cols, type, rows, cols, data);
    }

    private float[] randomFloats(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return v;
    }

    private void matmul(GgmlType type, int rows, int cols, int tokens) {
        KernelLayout layout = WeightRepacker.layoutFor(WeightMatrices.of("probe", type, 2, 256,
                MemorySegment.ofArray(new byte[(int) type.bytesFor(256, "probe") * 2])));
        long weightBytes = layout.valuesBytes(rows, cols) + layout.scalesBytes(rows, cols);
        int copies = (int) Math.max(1, Math.min(8, (ROTATE_BYTES + weightBytes - 1) / weightBytes));
        List<WeightMatrix> weights = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            for (int c = 0; c < copies; c++) {
                weights.add(gpu.upload(randomWeight(type, rows, cols, arena)));
            }
        }
        Tensor x = gpu.upload(randomFloats(tokens * cols), tokens, cols);
        Tensor out = gpu.allocate(tokens, rows);
        double seconds = time(i -> gpu.matmul(out, x, weights.get(i % copies)));
        double bytes = weightBytes + 4.0 * tokens * (cols + rows);
        record("matmul " + type, rows + "x" + cols + " T=" + tokens, seconds, bytes, 2.0 * rows * cols * tokens,
                cublas(rows, cols, tokens));
    }

    private void matmulInt4(int rows, int cols, int group, int tokens) {
        long weightBytes = (long) rows * cols / 2 + 3L * rows * (cols / group);
        int copies = (int) Math.max(1, Math.min(8, (ROTATE_BYTES + weightBytes - 1) / weightBytes));
        List<CudaBackend.DeviceInt4Weight> weights = new ArrayList<>();
        for (int c = 0; c < copies; c++) {
            int[] q = new int[rows * (cols / 8)];
            for (int i = 0; i < q.length; i++) {
                q[i] = random.nextInt();
            }
            short[] scales = new short[rows * (cols / group)];
            byte[] zeros = new byte[scales.length];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = Float.floatToFloat16(0.01f + (float) random.nextDouble() * 0.01f);
                zeros[i] = (byte) random.nextInt(16);
            }
            weights.add(gpu.upload(new Int4Weights(rows, cols, group, q, scales, zeros)));
        }
        Tensor x = gpu.upload(randomFloats(tokens * cols), tokens, cols);
        Tensor out = gpu.allocate(tokens, rows);
        double seconds = time(i -> gpu.matmul(out, x, weights.get(i % copies)));
        double bytes = weightBytes + 4.0 * tokens * (cols + rows);
        record("matmul INT4 g" + group, rows + "x" + cols + " T=" + tokens, seconds, bytes, 2.0 * rows * cols * tokens,
                cublas(rows, cols, tokens));
    }

    private void matmulNf4(int rows, int cols, int tokens) {
        long weightBytes = (long) rows * cols / 2 + 4L * rows * (cols / Nf4Weights.BLOCK);
        int copies = (int) Math.max(1, Math.min(8, (ROTATE_BYTES + weightBytes - 1) / weightBytes));
        List<CudaBackend.DeviceNf4Weight> weights = new ArrayList<>();
        for (int c = 0; c < copies; c++) {
            int[] q = new int[rows * (cols / 8)];
            for (int i = 0; i < q.length; i++) {
                q[i] = random.nextInt();
            }
            float[] absmax = new float[rows * (cols / Nf4Weights.BLOCK)];
            for (int i = 0; i < absmax.length; i++) {
                absmax[i] = 0.05f + (float) random.nextDouble() * 0.05f;
            }
            weights.add(gpu.upload(new Nf4Weights(rows, cols, q, absmax)));
        }
        Tensor x = gpu.upload(randomFloats(tokens * cols), tokens, cols);
        Tensor out = gpu.allocate(tokens, rows);
        double seconds = time(i -> gpu.matmul(out, x, weights.get(i % copies)));
        double bytes = weightBytes + 4.0 * tokens * (cols + rows);
        record("matmul NF4", rows + "x" + cols + " T=" + tokens, seconds, bytes, 2.0 * rows * cols * tokens,
                cublas(rows, cols, tokens));
    }

    private void matmulSparse24(int rows, int cols, int tokens) {
        long weightBytes = (long) rows * cols + (long) rows * cols / 8;
        int copies = (int) Math.max(1, Math.min(8, (ROTATE_BYTES + weightBytes - 1) / weightBytes));
        List<CudaBackend.DeviceSparse24Weight> weights = new ArrayList<>();
        for (int c = 0; c < copies; c++) {
            short[] values = new short[rows * (cols / 2)];
            for (int i = 0; i < values.length; i++) {
                values[i] = Float.floatToFloat16((float) (random.nextDouble() - 0.5) * 0.1f);
            }
            int[] meta = new int[rows * (cols / 32)];
            for (int i = 0; i < meta.length; i++) {
                int word = 0;
                for (int g = 0; g < 8; g++) {
                    int lo = random.nextInt(3);
                    int hi = lo + 1 + random.nextInt(3 - lo);
                    word |= (lo | hi << 2) << (4 * g);
                }
                meta[i] = word;
            }
            weights.add(gpu.upload(new Sparse24Weights(rows, cols, values, meta)));
        }
        Tensor x = gpu.upload(randomFloats(tokens * cols), tokens, cols);
        Tensor out = gpu.allocate(tokens, rows);
        double seconds = time(i -> gpu.matmul(out, x, weights.get(i % copies)));
        double bytes = weightBytes + 4.0 * tokens * (cols + rows);
        String kernel = tokens >= CudaBackend.SPARSE24_MMA_MIN_TOKENS ? "matmul 2:4 sparse FP16 mma.sp" : "matmul 2:4 sparse FP16";
        record(kernel, rows + "x" + cols + " T=" + tokens, seconds, bytes, 1.0 * rows * cols * tokens,
                cublas(rows, cols, tokens));
    }

    /** A one-layer cache of numBlocks blocks of 16, every slot holding random K/V. */
    private KvCache filledCache(int numBlocks, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
        KvCache cache = gpu.allocateKvCache(1, numBlocks, blockSize, kvHeads, headDim, dtype);
        // Fill the pools with random values (never time on zeros) through the write kernel, so
        // 16-bit pools hold properly rounded values, never the NaN patterns raw noise bits could be.
        int kvCols = kvHeads * headDim;
        int chunk = 4096;
        Tensor noiseK = gpu.upload(randomFloats(chunk * kvCols), chunk, kvCols);
        Tensor noiseV = gpu.upload(randomFloats(chunk * kvCols), chunk, kvCols);
        int slotsTotal = numBlocks * blockSize;
        for (int at = 0; at < slotsTotal; at += chunk) {
            int[] slots = new int[Math.min(chunk, slotsTotal - at)];
            for (int i = 0; i < slots.length; i++) {
                slots[i] = at + i;
            }
            gpu.writeKv(cache, 0, noiseK, noiseV, slots);
        }
        return cache;
    }

    /** One sequence's prefill chunk of {@code chunk} new tokens after {@code prefix} cached ones. */
    private void attentionPrefill(int chunk, int prefix, int heads, int kvHeads, int headDim, KvDtype dtype,
                                  boolean flash) {
        int blockSize = 16;
        int context = prefix + chunk;
        int numBlocks = (context + blockSize - 1) / blockSize;
        KvCache cache = filledCache(numBlocks, blockSize, kvHeads, headDim, dtype);
        int[] table = new int[numBlocks];
        for (int b = 0; b < numBlocks; b++) {
            table[b] = b;
        }
        BatchPlan plan = BatchPlan.singleSequence(new int[chunk], prefix, table, blockSize, false);
        Tensor q = gpu.upload(randomFloats(chunk * heads * headDim), chunk, heads * headDim);
        Tensor out = gpu.allocate(chunk, heads * headDim);
        float scale = (float) (1 / Math.sqrt(headDim));
        double seconds = flash
                ? time(i -> gpu.flashAttention(out, q, cache, 0, plan, heads, scale))
                : time(i -> gpu.attention(out, q, cache, 0, plan, heads, scale));
        // Fewest bytes: the window's K/V once, q read and out written once.
        double bytes = 2.0 * context * kvHeads * headDim * dtype.bytes() + 8.0 * chunk * heads * headDim;
        double windows = (double) chunk * prefix + (double) chunk * (chunk + 1) / 2; // sum of (position + 1)
        double flops = 4.0 * windows * heads * headDim;
        record((flash ? "flash prefill (mma.sync) " : "paged attention prefill ") + dtype.label() + " KV",
                "T=" + chunk + " prefix=" + prefix + " H=" + heads + "/" + kvHeads + " d=" + headDim, seconds, bytes,
                flops);
        cache.close();
    }

    private void attentionDecode(int sequences, int context, int heads, int kvHeads, int headDim, KvDtype dtype) {
        int blockSize = 16;
        int blocksPerSeq = (context + blockSize - 1) / blockSize;
        int numBlocks = sequences * blocksPerSeq;
        KvCache cache = filledCache(numBlocks, blockSize, kvHeads, headDim, dtype);
        int[] positions = new int[sequences];
        int[] seqStart = new int[sequences + 1];
        int[] tableStart = new int[sequences + 1];
        int[] table = new int[numBlocks];
        int[] slots = new int[sequences];
        for (int s = 0; s < sequences; s++) {
            positions[s] = context - 1;
            seqStart[s + 1] = s + 1;
            tableStart[s + 1] = (s + 1) * blocksPerSeq;
            for (int b = 0; b < blocksPerSeq; b++) {
                table[s * blocksPerSeq + b] = s * blocksPerSeq + b;
            }
            slots[s] = table[s * blocksPerSeq + (context - 1) / blockSize] * blockSize + (context - 1) % blockSize;
        }
        int[] contextLen = new int[sequences];
        Arrays.fill(contextLen, context - 1);
        BatchPlan plan = new BatchPlan(new int[sequences], positions, seqStart, contextLen, tableStart, table, slots,
                new int[0], blockSize);
        Tensor q = gpu.upload(randomFloats(sequences * heads * headDim), sequences, heads * headDim);
        Tensor out = gpu.allocate(sequences, heads * headDim);
        float scale = (float) (1 / Math.sqrt(headDim));
        double seconds = time(i -> gpu.attention(out, q, cache, 0, plan, heads, scale));
        double bytes = 2.0 * sequences * context * kvHeads * headDim * dtype.bytes() + 8.0 * sequences * heads * headDim;
        double flops = 4.0 * sequences * context * heads * headDim;
        record("paged attention decode " + dtype.label() + " KV", "B=" + sequences + " L=" + context + " H=" + heads + "/" + kvHeads
                + " d=" + headDim, seconds, bytes, flops);
        cache.close();
    }

    private void elementwise() {
        int dim = 4096;
        int ffn = 14336;
        for (int tokens : new int[] {1, 64}) {
            Tensor x = gpu.upload(randomFloats(tokens * dim), tokens, dim);
            Tensor out = gpu.allocate(tokens, dim);
            WeightMatrix w = gpu.upload(WeightMatrices.of("norm", GgmlType.F32, 1, dim,
                    MemorySegment.ofArray(randomFloats(dim))));
            double s = time(i -> gpu.rmsNorm(out, x, w, 1e-5f));
            record("rmsnorm", tokens + "x" + dim, s, 8.0 * tokens * dim + 4.0 * dim, 3.0 * tokens * dim);

            int[] positions = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                positions[t] = 1000 + t;
            }
            float[] invFreq = randomFloats(64);
            s = time(i -> gpu.rope(x, 32, 128, positions, invFreq, RopeStyle.INTERLEAVED));
            record("rope interleaved", tokens + "x32x128", s, 8.0 * tokens * dim, 6.0 * tokens * dim);

            Tensor gate = gpu.upload(randomFloats(tokens * ffn), tokens, ffn);
            Tensor up = gpu.upload(randomFloats(tokens * ffn), tokens, ffn);
            s = time(i -> gpu.swiglu(gate, up));
            record("swiglu", tokens + "x" + ffn, s, 12.0 * tokens * ffn, 5.0 * tokens * ffn);

            Tensor logits = gpu.upload(randomFloats(tokens * 128256), tokens, 128256);
            s = time(i -> gpu.argmax(logits));
            record("argmax (incl. copy to host)", tokens + "x128256", s, 4.0 * tokens * 128256, tokens * 128256.0);
        }
    }

    private String table() {
        StringBuilder sb = new StringBuilder();
        sb.append("# Kernel benchmark\n\n");
        sb.append("device: ").append(gpu.describe()).append("  \n");
        sb.append("date: ").append(Instant.now()).append("  \n");
        sb.append("method: median of ").append(SAMPLES).append(" samples, each the mean of ").append(LAUNCHES)
                .append(" launches between CUDA events; roofline = fewest bytes / measured d2d copy bandwidth.  \n");
        sb.append("cuBLAS FP16: cublasGemmEx, FP16 weights and inputs, FP32 accumulate, same shape; (Nx) = cuBLAS time"
                + " / ours, above 1 when ours is faster").append(cublasMissing == null ? "" : "; unavailable: " + cublasMissing)
                .append(".\n\n");
        sb.append("| kernel | shape | median us | GB/s | TFLOP/s | roofline us | of roofline | cuBLAS FP16 |\n");
        sb.append("|---|---|---|---|---|---|---|---|\n");
        for (String r : tableRows) {
            sb.append(r).append('\n');
        }
        return sb.toString();
    }
}
