package dev.lathe.cuda;

import dev.lathe.bindings.LatheNative;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * One captured decode step (DecodeGraphs): the CUDA graph, the padded plan it was recorded with,
 * and everything whose address the graph's nodes hold, kept until {@link #close}:
 * <ul>
 *   <li>the pinned staging buffer and the device buffer its first node copies the plan into;
 *   <li>every activation the step allocated while recording (owned here, never returned to the
 *       pool while the graph lives), the logits among them;
 *   <li>host arrays the step passed that are not the plan's (RoPE's frequencies): copied once
 *       into pinned memory and copied up by the graph at every launch, constants of the graph.
 * </ul>
 * While recording, CudaBackend sends its allocations and host-array uploads here
 * ({@link #allocate}, {@link #ints}, {@link #floats}). The host-side checks the ops ran on the
 * plan's arrays at capture are kept and re-run on each replay's contents ({@link #runChecks}).
 */
final class DecodeGraph implements AutoCloseable {
    final PaddedDecodePlan padded;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final DeviceMemoryPool pool;
    private final MemorySegment staging;          // pinned, padded.bytes
    private final DeviceMemoryPool.Block planBlock; // device copy of staging
    private final List<DeviceMemoryPool.Block> owned = new ArrayList<>();
    private final List<MemorySegment> constants = new ArrayList<>(); // pinned
    private final List<Runnable> checks = new ArrayList<>();
    private final MemorySegment launched;         // event recorded after each launch
    private MemorySegment graph;                  // lathe_graph*, set by finish
    private DeviceTensor output;
    private long nodes;
    private boolean closed;

    DecodeGraph(MemorySegment context, MemorySegment stream, DeviceMemoryPool pool, PaddedDecodePlan padded) {
        this.padded = padded;
        this.context = context;
        this.stream = stream;
        this.pool = pool;
        this.staging = LatheNative.hostAlloc(context, padded.bytes);
        this.planBlock = pool.allocate(padded.bytes);
        this.launched = LatheNative.eventCreate(context);
    }

    // ---- recording (between lathe_graph_begin_capture and end) ----------------------------

    /** The graph's first node: the staged plan to its device buffer. */
    void recordPlanCopy() {
        padded.pack(staging);
        LatheNative.memcpyH2d(stream, planBlock.address, staging, padded.bytes);
    }

    /** A zeroed activation owned by the graph (the memset is recorded too). */
    DeviceTensor allocate(int rows, int cols) {
        long bytes = Math.multiplyExact((long) rows * cols, 4L);
        DeviceMemoryPool.Block block = pool.allocate(Math.max(bytes, 4));
        owned.add(block);
        if (bytes > 0) {
            LatheNative.memset(stream, block.address, 0, bytes);
        }
        return DeviceTensor.unowned(rows, cols, block.address);
    }

    /** Device address of a plan array (its slot in the plan buffer) or of a constant copy of any other. */
    long ints(int[] values, Runnable check) {
        check.run();
        long offset = padded.offsetOf(values);
        if (offset >= 0) {
            checks.add(check);
            return planBlock.address + offset;
        }
        MemorySegment host = constant(4L * values.length);
        MemorySegment.copy(values, 0, host, ValueLayout.JAVA_INT_UNALIGNED, 0, values.length);
        return upload(host);
    }

    /** Device address of a constant copy of {@code values}. */
    long floats(float[] values) {
        MemorySegment host = constant(4L * values.length);
        MemorySegment.copy(values, 0, host, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
        return upload(host);
    }

    private MemorySegment constant(long bytes) {
        MemorySegment host = LatheNative.hostAlloc(context, Math.max(4, bytes));
        constants.add(host);
        return host;
    }

    private long upload(MemorySegment host) {
        DeviceMemoryPool.Block block = pool.allocate(host.byteSize());
        owned.add(block);
        LatheNative.memcpyH2d(stream, block.address, host, host.byteSize());
        return block.address;
    }

    /** Takes the instantiated graph and the step's logits. */
    void finish(MemorySegment graph, DeviceTensor output) {
        this.graph = graph;
        this.output = output;
        this.nodes = LatheNative.graphNodeCount(graph);
    }

    // ---- replay -------------------------------------------------------------------------------

    /** Waits until the last launch is done with the staging buffer (at once when never launched). */
    void awaitLastLaunch() {
        LatheNative.eventSynchronize(launched);
    }

    /** The host-side checks the ops made on the plan at capture, on its current contents. */
    void runChecks() {
        for (Runnable check : checks) {
            check.run();
        }
    }

    /** Stages the (refilled) plan and queues the graph; returns its logits, all rows. */
    DeviceTensor launch() {
        padded.pack(staging);
        LatheNative.graphLaunch(graph, stream);
        LatheNative.eventRecord(launched, stream);
        return output;
    }

    long nodes() {
        return nodes;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // NOTE: a queued launch may still read the pinned buffers and write the owned blocks;
        // wait for it before freeing them (blocks return to the pool, whose next user is queued
        // after it anyway).
        LatheNative.eventSynchronize(launched);
        if (graph != null) {
            LatheNative.graphDestroy(graph);
        }
        LatheNative.eventDestroy(launched);
        for (DeviceMemoryPool.Block b : owned) {
            b.release();
        }
        planBlock.release();
        LatheNative.hostFree(context, staging);
        for (MemorySegment c : constants) {
            LatheNative.hostFree(context, c);
        }
    }
}
