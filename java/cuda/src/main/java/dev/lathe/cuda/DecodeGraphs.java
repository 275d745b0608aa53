package dev.lathe.cuda;

import dev.lathe.bindings.LatheNative;
import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * Decode steps as CUDA graphs (issue 3: "the decode step is captured as a CUDA graph where shapes
 * allow"). A 200M-parameter decode step is ~200 dependent launches at ~7.5 us each on the H100 VM
 * (bench/results/gpu-20261122-h100/NOTES.md); one graph launch replaces them.
 *
 * <p>For a decode plan (every sequence one token, logits for each) of B sequences: the graph of
 * (step key, KV cache, batch bucket of B) is replayed when its context bound covers every window:
 * the plan is copied into the graph's fixed padded plan, checked, staged in pinned memory, and the
 * graph launched. Otherwise (first step of a bucket, or a window past the bound) the padded step
 * runs eagerly (its result is this step's, and it grows the stream workspace to this shape), then
 * is recorded into a new graph with the next bound, which replaces the old one. A step that cannot
 * be recorded (an op that needs the host mid-step, e.g. a 4-bit embedding table) is run eagerly
 * from then on for its key, with one warning naming the reason. Anything else (prefill chunks,
 * verify steps, batches over the largest bucket) runs eagerly, as without graphs.
 *
 * <p>NOTE: graphs are on unless {@code -Dlathe.cuda.graphs=off} or {@code LATHE_CUDA_GRAPHS=off}.
 * Written without a GPU, they stayed off until bench/gpu/run.sh showed greedy decoding identical
 * with and without them (DecodeGraphParityTest, 300 stories260K tokens) and faster: 1.14-1.21x
 * decode on the H100 (bench/results/gpu-20261123-h100).
 */
final class DecodeGraphs implements AutoCloseable {
    static final String PROPERTY = "lathe.cuda.graphs";
    static final String ENVIRONMENT = "LATHE_CUDA_GRAPHS";
    private static final System.Logger LOG = System.getLogger(DecodeGraphs.class.getName());
    private static final int CAPACITY = 16;

    /** How often each path ran, for tests and benchmarks. */
    record Stats(long captures, long replays, long eager, long failures, String lastFailure) {
    }

    private record Key(Object step, KvCache cache, int batch) {
    }

    private final CudaBackend backend;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final DeviceMemoryPool pool;
    private final DecodeBuckets buckets;
    private final GraphCache<Key, DecodeGraph> graphs = new GraphCache<>(CAPACITY);
    private final Map<Object, String> unrecordable = new HashMap<>();
    private long captures;
    private long replays;
    private long eager;
    private long failures;
    private String lastFailure = "";

    DecodeGraphs(CudaBackend backend, MemorySegment context, MemorySegment stream, DeviceMemoryPool pool,
                 DecodeBuckets buckets) {
        this.backend = backend;
        this.context = context;
        this.stream = stream;
        this.pool = pool;
        this.buckets = buckets;
    }

    /** Whether the switch turns graphs on: the system property first, then the environment; off when unset. */
    static boolean enabled() {
        return CudaSwitch.enabled(PROPERTY, ENVIRONMENT);
    }

    Tensor run(BatchPlan plan, KvCache kv, Object stepKey, Function<BatchPlan, Tensor> step) {
        int bucket = PaddedDecodePlan.isDecode(plan) && kv instanceof DeviceKvCache
                ? buckets.batchBucket(plan.sequenceCount()) : -1;
        if (bucket < 0 || unrecordable.containsKey(stepKey) || plan.blockSize() != kv.blockSize()) {
            eager++;
            return step.apply(plan);
        }
        DeviceKvCache cache = (DeviceKvCache) kv;
        Key key = new Key(stepKey, cache, bucket);
        DecodeGraph graph = graphs.get(key);
        if (graph != null && graph.padded.fits(plan)) {
            graph.awaitLastLaunch();
            graph.padded.fill(plan);
            graph.runChecks();
            replays++;
            return DeviceTensor.firstRows(graph.launch(), plan.sequenceCount());
        }
        int bound = buckets.contextBound(PaddedDecodePlan.window(plan), plan.blockSize(), cache.numBlocks());
        PaddedDecodePlan padded = new PaddedDecodePlan(bucket, bound, plan.blockSize(), cache.sinkBlock());
        padded.fill(plan);
        // The eager run of the padded step is this step's result; it also leaves the workspace
        // and the pool sized for the shapes the capture records.
        DeviceTensor logits;
        backend.contextBound(bound);
        try {
            logits = (DeviceTensor) step.apply(padded.plan);
        } finally {
            backend.contextBound(0);
        }
        eager++;
        graphs.remove(key);
        try {
            graphs.put(key, record(padded, step));
            captures++;
        } catch (RuntimeException e) {
            failures++;
            lastFailure = e.getMessage();
            unrecordable.put(stepKey, lastFailure);
            LOG.log(System.Logger.Level.WARNING, "decode step not captured as a CUDA graph, running it uncaptured: "
                    + lastFailure);
        }
        return DeviceTensor.firstRows(logits, plan.sequenceCount());
    }

    private DecodeGraph record(PaddedDecodePlan padded, Function<BatchPlan, Tensor> step) {
        DecodeGraph graph = new DecodeGraph(context, stream, pool, padded);
        boolean capturing = false;
        backend.recordInto(graph, padded.contextBound);
        try {
            LatheNative.graphBeginCapture(stream);
            capturing = true;
            graph.recordPlanCopy();
            Tensor out = step.apply(padded.plan);
            if (!(out instanceof DeviceTensor logits) || out.rows() != padded.batch) {
                throw new IllegalStateException("the step returned " + out + ", not the " + padded.batch + " logit rows");
            }
            capturing = false;
            graph.finish(LatheNative.graphEndCapture(stream), logits);
            return graph;
        } catch (RuntimeException e) {
            if (capturing) {
                try {
                    LatheNative.graphDestroy(LatheNative.graphEndCapture(stream));
                } catch (RuntimeException ended) {
                    e.addSuppressed(ended);
                }
            }
            graph.close();
            throw e;
        } finally {
            backend.recordInto(null, 0);
        }
    }

    Stats stats() {
        return new Stats(captures, replays, eager, failures, lastFailure);
    }

    @Override
    public void close() {
        graphs.clear();
    }
}
