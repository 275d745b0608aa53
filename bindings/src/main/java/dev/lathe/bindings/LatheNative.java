package dev.lathe.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One Java method per function of {@code native/include/lathe.h}, nothing clever: arguments go
 * through unchanged (device pointers as {@code long} addresses, handles as {@link MemorySegment}s,
 * sizes as {@code long}), out-parameters come back as return values, and a status other than
 * {@code LATHE_OK} becomes a {@link LatheException} carrying {@code lathe_last_error()}.
 *
 * <p>{@link #FUNCTIONS} lists every binding's C signature; {@code HeaderBindingsTest} checks it
 * against lathe.h. The library is loaded on the first call ({@link LatheLibrary}).
 */
public final class LatheNative {
    private LatheNative() {
    }

    private static final Map<String, FunctionDescriptor> DESCRIPTORS = new LinkedHashMap<>();

    /** Every bound C function and its descriptor, in header order. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Collections.unmodifiableMap(DESCRIPTORS);

    private static final MemoryLayout I32 = JAVA_INT;
    private static final MemoryLayout I64 = JAVA_LONG;
    private static final MemoryLayout F32 = JAVA_FLOAT;
    private static final MemoryLayout PTR = ADDRESS;

    private static FunctionDescriptor status(String name, MemoryLayout... args) {
        FunctionDescriptor d = FunctionDescriptor.of(JAVA_INT, args);
        DESCRIPTORS.put(name, d);
        return d;
    }

    static {
        DESCRIPTORS.put("lathe_last_error", FunctionDescriptor.of(ADDRESS));
        status("lathe_abi_version", PTR);
        status("lathe_driver_version", PTR);
        status("lathe_runtime_version", PTR);
        status("lathe_device_count", PTR);
        status("lathe_context_create", I32, PTR);
        status("lathe_context_destroy", PTR);
        status("lathe_device_name", PTR, PTR, I64);
        status("lathe_device_compute_capability", PTR, PTR, PTR);
        status("lathe_device_memory", PTR, PTR, PTR);
        status("lathe_device_multiprocessors", PTR, PTR);
        status("lathe_stream_create", PTR, PTR);
        status("lathe_stream_destroy", PTR);
        status("lathe_stream_synchronize", PTR);
        status("lathe_buffer_alloc", PTR, I64, PTR);
        status("lathe_buffer_free", PTR);
        status("lathe_buffer_device_pointer", PTR, PTR);
        status("lathe_buffer_size", PTR, PTR);
        status("lathe_memcpy_h2d", PTR, PTR, PTR, I64);
        status("lathe_memcpy_d2h", PTR, PTR, PTR, I64);
        status("lathe_memcpy_d2d", PTR, PTR, PTR, I64);
        status("lathe_memset", PTR, PTR, I32, I64);
        status("lathe_event_create", PTR, PTR);
        status("lathe_event_destroy", PTR);
        status("lathe_event_record", PTR, PTR);
        status("lathe_event_synchronize", PTR);
        status("lathe_event_elapsed_ms", PTR, PTR, PTR);
        status("lathe_graph_begin_capture", PTR);
        status("lathe_graph_end_capture", PTR, PTR);
        status("lathe_graph_launch", PTR, PTR);
        status("lathe_graph_node_count", PTR, PTR);
        status("lathe_graph_destroy", PTR);
        status("lathe_host_alloc", PTR, I64, PTR);
        status("lathe_host_free", PTR, PTR);
        status("lathe_embed", PTR, I32, PTR, PTR, I64, I64, PTR, I64, PTR);
        status("lathe_rmsnorm", PTR, PTR, PTR, PTR, I64, I64, F32);
        status("lathe_add_bias", PTR, PTR, PTR, I64, I64);
        status("lathe_add", PTR, PTR, PTR, I64);
        status("lathe_swiglu", PTR, PTR, PTR, I64);
        status("lathe_gather_rows", PTR, PTR, PTR, PTR, I64, I64, I64);
        status("lathe_rope", PTR, PTR, PTR, PTR, I64, I64, I64, I32);
        status("lathe_argmax", PTR, PTR, PTR, I64, I64);
        status("lathe_matmul", PTR, I32, PTR, PTR, I64, I64, PTR, I64, PTR);
        status("lathe_matmul_int4", PTR, PTR, PTR, PTR, I64, I64, I64, PTR, I64, PTR);
        status("lathe_matmul_nf4", PTR, PTR, PTR, I64, I64, PTR, I64, PTR);
        status("lathe_matmul_sparse24", PTR, PTR, PTR, I64, I64, PTR, I64, PTR);
        status("lathe_matmul_sparse24_mma", PTR, PTR, PTR, I64, I64, PTR, I64, PTR);
        status("lathe_write_kv", PTR, I32, PTR, PTR, PTR, PTR, PTR, I64, I64, I64);
        status("lathe_paged_attention", PTR, I32, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR,
                I64, I64, I64, I64, I64, I64, I64, I64, F32);
        status("lathe_flash_prefill", PTR, I32, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR,
                I64, I64, I64, I64, I64, I64, I64, I64, F32);
        status("lathe_spec_verify", PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, I64, I64, I64, F32, I32, F32);
        status("lathe_cublas_gemm_f16", PTR, PTR, PTR, PTR, I64, I64, I64);
    }

    // ---- handles: bound on first use -------------------------------------------------------

    // NOTE: as in LatheLibrary, a failure is kept and repeated, never thrown from the initializer.
    private static final class Handles {
        static final Object BY_NAME_OR_ERROR = tryBindAll();

        private static Object tryBindAll() {
            try {
                return bindAll();
            } catch (UnsatisfiedLinkError e) {
                return e.getMessage();
            }
        }

        private static Map<String, MethodHandle> bindAll() {
            Linker linker = Linker.nativeLinker();
            Map<String, MethodHandle> handles = new LinkedHashMap<>();
            for (Map.Entry<String, FunctionDescriptor> e : DESCRIPTORS.entrySet()) {
                MemorySegment symbol = LatheLibrary.lookup().find(e.getKey()).orElseThrow(() -> new UnsatisfiedLinkError(
                        "liblathe_cuda.so has no symbol " + e.getKey() + ": the library is older than these bindings"));
                handles.put(e.getKey(), linker.downcallHandle(symbol, e.getValue()));
            }
            return handles;
        }
    }

    @SuppressWarnings("unchecked")
    private static MethodHandle h(String name) {
        Object outcome = Handles.BY_NAME_OR_ERROR;
        if (outcome instanceof Map<?, ?> handles) {
            return ((Map<String, MethodHandle>) handles).get(name);
        }
        throw new UnsatisfiedLinkError((String) outcome);
    }

    /** The {@code LATHE_ABI_VERSION} of the lathe.h these bindings were written against (HeaderBindingsTest checks it). */
    public static final int ABI_VERSION = 3;

    /**
     * Loads the library, binds every function and checks its ABI version; throws
     * {@link UnsatisfiedLinkError} with the reason.
     */
    // NOTE: a library built from another lathe.h can have every symbol with other signatures
    // (version 2 added the K/V dtype argument); calling it would pass the wrong arguments silently.
    public static void load() {
        h("lathe_last_error");
        int version = abiVersion();
        if (version != ABI_VERSION) {
            throw new UnsatisfiedLinkError("liblathe_cuda.so has ABI version " + version + " but these bindings need "
                    + ABI_VERSION + ": rebuild the library from this checkout (./lathe mvn -pl bindings -am package)"
                    + " or point -D" + LatheLibrary.PROPERTY + " / $" + LatheLibrary.ENVIRONMENT + " at a matching one");
        }
    }

    private static void check(String function, int status) {
        if (status != LatheStatus.OK) {
            throw new LatheException(status, function, lastError());
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    private static MemorySegment address(long pointer) {
        return MemorySegment.ofAddress(pointer);
    }

    // ---- errors and versions ----------------------------------------------------------------

    /** {@code lathe_last_error()}: the calling thread's last failure message. */
    public static String lastError() {
        try {
            MemorySegment message = (MemorySegment) h("lathe_last_error").invokeExact();
            return message.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static int intOut(String function) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(function, (int) h(function).invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int abiVersion() {
        return intOut("lathe_abi_version");
    }

    public static int driverVersion() {
        return intOut("lathe_driver_version");
    }

    public static int runtimeVersion() {
        return intOut("lathe_runtime_version");
    }

    public static int deviceCount() {
        return intOut("lathe_device_count");
    }

    // ---- context ---------------------------------------------------------------------------

    private static MemorySegment handleOut(String function, HandleCall call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(function, call.invoke(out));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @FunctionalInterface
    private interface HandleCall {
        int invoke(MemorySegment out) throws Throwable;
    }

    private static void handleCall(String function, MemorySegment handle) {
        try {
            check(function, (int) h(function).invokeExact(handle));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static MemorySegment contextCreate(int device) {
        return handleOut("lathe_context_create", out -> (int) h("lathe_context_create").invokeExact(device, out));
    }

    public static void contextDestroy(MemorySegment context) {
        handleCall("lathe_context_destroy", context);
    }

    public static String deviceName(MemorySegment context) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(256);
            check("lathe_device_name", (int) h("lathe_device_name").invokeExact(context, name, 256L));
            return name.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code {major, minor}}. */
    public static int[] deviceComputeCapability(MemorySegment context) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            check("lathe_device_compute_capability",
                    (int) h("lathe_device_compute_capability").invokeExact(context, major, minor));
            return new int[] {major.get(JAVA_INT, 0), minor.get(JAVA_INT, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code {freeBytes, totalBytes}}. */
    public static long[] deviceMemory(MemorySegment context) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check("lathe_device_memory", (int) h("lathe_device_memory").invokeExact(context, free, total));
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int deviceMultiprocessors(MemorySegment context) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_INT);
            check("lathe_device_multiprocessors", (int) h("lathe_device_multiprocessors").invokeExact(context, count));
            return count.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- streams, buffers, copies, events ------------------------------------------------

    public static MemorySegment streamCreate(MemorySegment context) {
        return handleOut("lathe_stream_create", out -> (int) h("lathe_stream_create").invokeExact(context, out));
    }

    public static void streamDestroy(MemorySegment stream) {
        handleCall("lathe_stream_destroy", stream);
    }

    public static void streamSynchronize(MemorySegment stream) {
        handleCall("lathe_stream_synchronize", stream);
    }

    public static MemorySegment bufferAlloc(MemorySegment context, long bytes) {
        return handleOut("lathe_buffer_alloc", out -> (int) h("lathe_buffer_alloc").invokeExact(context, bytes, out));
    }

    public static void bufferFree(MemorySegment buffer) {
        handleCall("lathe_buffer_free", buffer);
    }

    public static long bufferDevicePointer(MemorySegment buffer) {
        return handleOut("lathe_buffer_device_pointer",
                out -> (int) h("lathe_buffer_device_pointer").invokeExact(buffer, out)).address();
    }

    public static long bufferSize(MemorySegment buffer) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bytes = arena.allocate(JAVA_LONG);
            check("lathe_buffer_size", (int) h("lathe_buffer_size").invokeExact(buffer, bytes));
            return bytes.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Copies {@code bytes} from host memory to device address {@code deviceDst}. */
    public static void memcpyH2d(MemorySegment stream, long deviceDst, MemorySegment hostSrc, long bytes) {
        try {
            check("lathe_memcpy_h2d", (int) h("lathe_memcpy_h2d").invokeExact(stream, address(deviceDst), hostSrc, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Copies {@code bytes} from device address {@code deviceSrc} into host memory; returns when done. */
    public static void memcpyD2h(MemorySegment stream, MemorySegment hostDst, long deviceSrc, long bytes) {
        try {
            check("lathe_memcpy_d2h", (int) h("lathe_memcpy_d2h").invokeExact(stream, hostDst, address(deviceSrc), bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memcpyD2d(MemorySegment stream, long deviceDst, long deviceSrc, long bytes) {
        try {
            check("lathe_memcpy_d2d",
                    (int) h("lathe_memcpy_d2d").invokeExact(stream, address(deviceDst), address(deviceSrc), bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memset(MemorySegment stream, long deviceDst, int value, long bytes) {
        try {
            check("lathe_memset", (int) h("lathe_memset").invokeExact(stream, address(deviceDst), value, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static MemorySegment eventCreate(MemorySegment context) {
        return handleOut("lathe_event_create", out -> (int) h("lathe_event_create").invokeExact(context, out));
    }

    public static void eventDestroy(MemorySegment event) {
        handleCall("lathe_event_destroy", event);
    }

    public static void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check("lathe_event_record", (int) h("lathe_event_record").invokeExact(event, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void eventSynchronize(MemorySegment event) {
        handleCall("lathe_event_synchronize", event);
    }

    public static float eventElapsedMs(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ms = arena.allocate(JAVA_FLOAT);
            check("lathe_event_elapsed_ms", (int) h("lathe_event_elapsed_ms").invokeExact(start, end, ms));
            return ms.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- graphs and pinned host memory -----------------------------------------------------

    /** Starts recording the work queued on {@code stream}. */
    public static void graphBeginCapture(MemorySegment stream) {
        handleCall("lathe_graph_begin_capture", stream);
    }

    /** Ends the capture (always) and returns the instantiated graph. */
    public static MemorySegment graphEndCapture(MemorySegment stream) {
        return handleOut("lathe_graph_end_capture", out -> (int) h("lathe_graph_end_capture").invokeExact(stream, out));
    }

    public static void graphLaunch(MemorySegment graph, MemorySegment stream) {
        try {
            check("lathe_graph_launch", (int) h("lathe_graph_launch").invokeExact(graph, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long graphNodeCount(MemorySegment graph) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment nodes = arena.allocate(JAVA_LONG);
            check("lathe_graph_node_count", (int) h("lathe_graph_node_count").invokeExact(graph, nodes));
            return nodes.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void graphDestroy(MemorySegment graph) {
        handleCall("lathe_graph_destroy", graph);
    }

    /** Pinned host memory of {@code bytes}, as a segment of that size; free with {@link #hostFree}. */
    public static MemorySegment hostAlloc(MemorySegment context, long bytes) {
        return handleOut("lathe_host_alloc", out -> (int) h("lathe_host_alloc").invokeExact(context, bytes, out))
                .reinterpret(bytes);
    }

    public static void hostFree(MemorySegment context, MemorySegment host) {
        try {
            check("lathe_host_free", (int) h("lathe_host_free").invokeExact(context, host));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- fused common ops ------------------------------------------------------------------
    // Device arguments are device addresses; shapes as in lathe.h.

    public static void embed(MemorySegment stream, int tableFormat, long tableValues, long tableScales, long vocab,
                             long dim, long tokens, long nTokens, long out) {
        try {
            check("lathe_embed", (int) h("lathe_embed").invokeExact(stream, tableFormat, address(tableValues),
                    address(tableScales), vocab, dim, address(tokens), nTokens, address(out)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void rmsnorm(MemorySegment stream, long out, long x, long weight, long rows, long cols, float eps) {
        try {
            check("lathe_rmsnorm", (int) h("lathe_rmsnorm").invokeExact(stream, address(out), address(x), address(weight),
                    rows, cols, eps));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void addBias(MemorySegment stream, long x, long bias, long rows, long cols) {
        try {
            check("lathe_add_bias", (int) h("lathe_add_bias").invokeExact(stream, address(x), address(bias), rows, cols));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void add(MemorySegment stream, long x, long y, long n) {
        try {
            check("lathe_add", (int) h("lathe_add").invokeExact(stream, address(x), address(y), n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void swiglu(MemorySegment stream, long gate, long up, long n) {
        try {
            check("lathe_swiglu", (int) h("lathe_swiglu").invokeExact(stream, address(gate), address(up), n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void gatherRows(MemorySegment stream, long out, long x, long rows, long nRows, long xRows, long cols) {
        try {
            check("lathe_gather_rows", (int) h("lathe_gather_rows").invokeExact(stream, address(out), address(x),
                    address(rows), nRows, xRows, cols));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void rope(MemorySegment stream, long x, long positions, long invFreq, long tokens, long heads,
                            long headDim, int style) {
        try {
            check("lathe_rope", (int) h("lathe_rope").invokeExact(stream, address(x), address(positions),
                    address(invFreq), tokens, heads, headDim, style));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void argmax(MemorySegment stream, long out, long x, long rows, long cols) {
        try {
            check("lathe_argmax", (int) h("lathe_argmax").invokeExact(stream, address(out), address(x), rows, cols));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- dequant-matmul --------------------------------------------------------------------

    public static void matmul(MemorySegment stream, int weightFormat, long weightValues, long weightScales, long rows,
                              long cols, long x, long tokens, long out) {
        try {
            check("lathe_matmul", (int) h("lathe_matmul").invokeExact(stream, weightFormat, address(weightValues),
                    address(weightScales), rows, cols, address(x), tokens, address(out)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void matmulInt4(MemorySegment stream, long qweight, long scales, long zeros, long rows, long cols,
                                  long group, long x, long tokens, long out) {
        try {
            check("lathe_matmul_int4", (int) h("lathe_matmul_int4").invokeExact(stream, address(qweight), address(scales),
                    address(zeros), rows, cols, group, address(x), tokens, address(out)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void matmulNf4(MemorySegment stream, long qweight, long absmax, long rows, long cols, long x,
                                 long tokens, long out) {
        try {
            check("lathe_matmul_nf4", (int) h("lathe_matmul_nf4").invokeExact(stream, address(qweight), address(absmax),
                    rows, cols, address(x), tokens, address(out)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void matmulSparse24(MemorySegment stream, long values, long meta, long rows, long cols, long x,
                                      long tokens, long out) {
        try {
            check("lathe_matmul_sparse24", (int) h("lathe_matmul_sparse24").invokeExact(stream, address(values),
                    address(meta), rows, cols, address(x), tokens, address(out)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void matmulSparse24Mma(MemorySegment stream, long fragments, long meta, long rows, long cols, long x,
                                         long tokens, long out) {
        try {
            check("lathe_matmul_sparse24_mma", (int) h("lathe_matmul_sparse24_mma").invokeExact(stream,
                    address(fragments), address(meta), rows, cols, address(x), tokens, address(out)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- paged attention -------------------------------------------------------------------

    /** {@code kvDtype}: the pools' LATHE_KV_* code. */
    public static void writeKv(MemorySegment stream, int kvDtype, long kCache, long vCache, long k, long v,
                               long slotMapping, long tokens, long rowValues, long numSlots) {
        try {
            check("lathe_write_kv", (int) h("lathe_write_kv").invokeExact(stream, kvDtype, address(kCache),
                    address(vCache), address(k), address(v), address(slotMapping), tokens, rowValues, numSlots));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code kvDtype}: the pools' LATHE_KV_* code. */
    public static void pagedAttention(MemorySegment stream, int kvDtype, long out, long q, long kCache, long vCache,
                                      long positions, long seqStart, long blockTableStart, long blockTable, long tokens,
                                      long seqs, long heads, long kvHeads, long headDim, long blockSize,
                                      long numBlocks, long maxContext, float scale) {
        try {
            check("lathe_paged_attention", (int) h("lathe_paged_attention").invokeExact(stream, kvDtype, address(out),
                    address(q),
                    address(kCache), address(vCache), address(positions), address(seqStart), address(blockTableStart),
                    address(blockTable), tokens, seqs, heads, kvHeads, headDim, blockSize, numBlocks, maxContext, scale));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The same attention on the tensor cores for prefill chunks (head_dim 64 or 128, at most 64
     * query heads per KV head); {@code maxSeqTokens}: the most new tokens of any sequence.
     */
    public static void flashPrefill(MemorySegment stream, int kvDtype, long out, long q, long kCache, long vCache,
                                    long positions, long seqStart, long blockTableStart, long blockTable, long tokens,
                                    long seqs, long heads, long kvHeads, long headDim, long blockSize,
                                    long numBlocks, long maxSeqTokens, float scale) {
        try {
            check("lathe_flash_prefill", (int) h("lathe_flash_prefill").invokeExact(stream, kvDtype, address(out),
                    address(q),
                    address(kCache), address(vCache), address(positions), address(seqStart), address(blockTableStart),
                    address(blockTable), tokens, seqs, heads, kvHeads, headDim, blockSize, numBlocks, maxSeqTokens,
                    scale));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- speculative verification ----------------------------------------------------------

    public static void specVerify(MemorySegment stream, long targetLogits, long draftProbs, long draftTokens, long seeds,
                                  long offsets, long accepted, long nextToken, long scratch, long batch, long k,
                                  long vocab, float temperature, int topK, float topP) {
        try {
            check("lathe_spec_verify", (int) h("lathe_spec_verify").invokeExact(stream, address(targetLogits),
                    address(draftProbs), address(draftTokens), address(seeds), address(offsets), address(accepted),
                    address(nextToken), address(scratch), batch, k, vocab, temperature, topK, topP));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- baseline ----------------------------------------------------------------------------

    /** cuBLAS FP16 GEMM (benchmarks): {@code out[tokens, rows] = x[tokens, cols] . W[rows, cols]^T}. */
    public static void cublasGemmF16(MemorySegment stream, long weight, long x, long out, long rows, long cols,
                                     long tokens) {
        try {
            check("lathe_cublas_gemm_f16", (int) h("lathe_cublas_gemm_f16").invokeExact(stream, address(weight),
                    address(x), address(out), rows, cols, tokens));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
