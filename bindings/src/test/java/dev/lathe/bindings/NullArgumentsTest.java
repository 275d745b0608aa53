package dev.lathe.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Calls every binding through the real library with a NULL handle: each must come back as a
 * {@link LatheException} naming the problem, which proves the downcall's Java types match the
 * C function (a wrong {@code invokeExact} type would throw WrongMethodTypeException instead).
 * Needs the built library (it is, wherever nvcc is, CI included) but no GPU or driver.
 */
class NullArgumentsTest {
    private static final MemorySegment NULL = MemorySegment.NULL;

    @BeforeAll
    static void libraryPresent() {
        org.junit.jupiter.api.Assumptions.assumeTrue(LatheLibrary.isPackaged(),
                "liblathe_cuda.so not built (no nvcc): skipping the downcall checks");
        LatheNative.load();
    }

    private static void rejects(String function, String messagePart, Executable call) {
        LatheException e = assertThrows(LatheException.class, call, function);
        assertEquals(function, e.function());
        assertEquals(LatheStatus.INVALID_ARGUMENT, e.status(), e.getMessage());
        assertTrue(e.getMessage().contains(messagePart), e.getMessage());
    }

    @Test
    void versionsNeedNoDevice() {
        assertEquals(LatheNative.ABI_VERSION, LatheNative.abiVersion());
        assertTrue(LatheNative.runtimeVersion() >= 12000, "runtime " + LatheNative.runtimeVersion());
        assertTrue(LatheNative.driverVersion() >= 0);
    }

    @Test
    void handleFunctionsRejectNull() {
        List<Consumer<MemorySegment>> calls = List.of(LatheNative::contextDestroy, LatheNative::streamDestroy,
                LatheNative::streamSynchronize, LatheNative::bufferFree, LatheNative::eventDestroy,
                LatheNative::eventSynchronize, LatheNative::graphBeginCapture, LatheNative::graphDestroy);
        for (Consumer<MemorySegment> call : calls) {
            LatheException e = assertThrows(LatheException.class, () -> call.accept(NULL));
            assertTrue(e.getMessage().contains("is NULL"), e.getMessage());
        }
        rejects("lathe_device_name", "context is NULL", () -> LatheNative.deviceName(NULL));
        rejects("lathe_device_compute_capability", "context is NULL", () -> LatheNative.deviceComputeCapability(NULL));
        rejects("lathe_device_memory", "context is NULL", () -> LatheNative.deviceMemory(NULL));
        rejects("lathe_device_multiprocessors", "context is NULL", () -> LatheNative.deviceMultiprocessors(NULL));
        rejects("lathe_stream_create", "context is NULL", () -> LatheNative.streamCreate(NULL));
        rejects("lathe_buffer_alloc", "context is NULL", () -> LatheNative.bufferAlloc(NULL, 16));
        rejects("lathe_buffer_device_pointer", "buffer is NULL", () -> LatheNative.bufferDevicePointer(NULL));
        rejects("lathe_buffer_size", "buffer is NULL", () -> LatheNative.bufferSize(NULL));
        rejects("lathe_event_create", "context is NULL", () -> LatheNative.eventCreate(NULL));
        rejects("lathe_event_record", "stream is NULL", () -> LatheNative.eventRecord(NULL, NULL));
        rejects("lathe_event_elapsed_ms", "is NULL", () -> LatheNative.eventElapsedMs(NULL, NULL));
        rejects("lathe_graph_end_capture", "stream is NULL", () -> LatheNative.graphEndCapture(NULL));
        rejects("lathe_graph_launch", "stream is NULL", () -> LatheNative.graphLaunch(NULL, NULL));
        rejects("lathe_graph_node_count", "graph is NULL", () -> LatheNative.graphNodeCount(NULL));
        rejects("lathe_host_alloc", "context is NULL", () -> LatheNative.hostAlloc(NULL, 16));
        rejects("lathe_host_free", "context is NULL", () -> LatheNative.hostFree(NULL, NULL));
    }

    @Test
    void copiesRejectANullStream() {
        rejects("lathe_memcpy_h2d", "stream is NULL", () -> LatheNative.memcpyH2d(NULL, 0, NULL, 4));
        rejects("lathe_memcpy_d2h", "stream is NULL", () -> LatheNative.memcpyD2h(NULL, NULL, 0, 4));
        rejects("lathe_memcpy_d2d", "stream is NULL", () -> LatheNative.memcpyD2d(NULL, 0, 0, 4));
        rejects("lathe_memset", "stream is NULL", () -> LatheNative.memset(NULL, 0, 0, 4));
    }

    @Test
    void opsRejectANullStream() {
        rejects("lathe_embed", "stream is NULL", () -> LatheNative.embed(NULL, 0, 0, 0, 1, 1, 0, 1, 0));
        rejects("lathe_rmsnorm", "stream is NULL", () -> LatheNative.rmsnorm(NULL, 0, 0, 0, 1, 1, 1e-5f));
        rejects("lathe_add_bias", "stream is NULL", () -> LatheNative.addBias(NULL, 0, 0, 1, 1));
        rejects("lathe_add", "stream is NULL", () -> LatheNative.add(NULL, 0, 0, 1));
        rejects("lathe_swiglu", "stream is NULL", () -> LatheNative.swiglu(NULL, 0, 0, 1));
        rejects("lathe_gather_rows", "stream is NULL", () -> LatheNative.gatherRows(NULL, 0, 0, 0, 1, 1, 1));
        rejects("lathe_rope", "stream is NULL", () -> LatheNative.rope(NULL, 0, 0, 0, 1, 1, 2, 0));
        rejects("lathe_argmax", "stream is NULL", () -> LatheNative.argmax(NULL, 0, 0, 1, 1));
        rejects("lathe_matmul", "stream is NULL", () -> LatheNative.matmul(NULL, 0, 0, 0, 1, 1, 0, 1, 0));
        rejects("lathe_matmul_int4", "stream is NULL", () -> LatheNative.matmulInt4(NULL, 0, 0, 0, 1, 32, 32, 0, 1, 0));
        rejects("lathe_matmul_nf4", "stream is NULL", () -> LatheNative.matmulNf4(NULL, 0, 0, 1, 64, 0, 1, 0));
        rejects("lathe_matmul_sparse24", "stream is NULL", () -> LatheNative.matmulSparse24(NULL, 0, 0, 1, 32, 0, 1, 0));
        rejects("lathe_matmul_sparse24_mma", "stream is NULL",
                () -> LatheNative.matmulSparse24Mma(NULL, 0, 0, 1, 64, 0, 8, 0));
        for (int kvDtype = 0; kvDtype <= 2; kvDtype++) { // LATHE_KV_F32, F16, BF16: past the dtype check
            int code = kvDtype;
            rejects("lathe_write_kv", "stream is NULL", () -> LatheNative.writeKv(NULL, code, 0, 0, 0, 0, 0, 1, 1, 1));
            rejects("lathe_paged_attention", "stream is NULL", () -> LatheNative.pagedAttention(NULL, code, 0, 0, 0, 0, 0,
                    0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1f));
            rejects("lathe_flash_prefill", "stream is NULL", () -> LatheNative.flashPrefill(NULL, code, 0, 0, 0, 0, 0,
                    0, 0, 0, 1, 1, 1, 1, 64, 1, 1, 1, 1f));
        }
        rejects("lathe_spec_verify", "stream is NULL", () -> LatheNative.specVerify(NULL, 0, 0, 0, 0, 0, 0, 0, 0,
                1, 1, 1, 1f, 0, 1f));
        rejects("lathe_cublas_gemm_f16", "stream is NULL", () -> LatheNative.cublasGemmF16(NULL, 0, 0, 0, 1, 1, 1));
    }

    /** A K/V dtype code with no kernels (3 would be int8) is refused by name before the stream is looked at. */
    @Test
    void kvOpsRefuseAnUnknownDtype() {
        for (int code : new int[] {3, -1, 99}) {
            List<Executable> calls = List.of(
                    () -> LatheNative.writeKv(NULL, code, 0, 0, 0, 0, 0, 1, 1, 1),
                    () -> LatheNative.pagedAttention(NULL, code, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1f),
                    () -> LatheNative.flashPrefill(NULL, code, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 64, 1, 1, 1, 1f));
            for (Executable call : calls) {
                LatheException e = assertThrows(LatheException.class, call);
                assertEquals(LatheStatus.UNSUPPORTED, e.status(), e.getMessage());
                assertTrue(e.getMessage().contains("kv_dtype " + code + " is not a K/V pool type"), e.getMessage());
            }
        }
    }

    /** What the flash prefill kernel lacks is refused by name before the stream, so the caller can fall back. */
    @Test
    void flashPrefillRefusesShapesItHasNoKernelFor() {
        rejects("lathe_flash_prefill", "head_dim 64 and 128 only, got 80",
                () -> LatheNative.flashPrefill(NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 8, 2, 80, 16, 1, 1, 1f));
        rejects("lathe_flash_prefill", "at most 64 query heads per KV head",
                () -> LatheNative.flashPrefill(NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 128, 1, 64, 16, 1, 1, 1f));
        rejects("lathe_flash_prefill", "max_seq_tokens must be in [1, tokens = 5], got 6",
                () -> LatheNative.flashPrefill(NULL, 2, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 8, 8, 128, 16, 1, 6, 1f));
        rejects("lathe_flash_prefill", "heads (6) must be a positive multiple of kv_heads (4)",
                () -> LatheNative.flashPrefill(NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 6, 4, 64, 16, 1, 1, 1f));
    }

    @Test
    void deviceCountExplainsAMissingDevice() {
        // Here (CI, no GPU) this fails with the driver's reason; on a GPU machine it counts devices.
        try {
            assertTrue(LatheNative.deviceCount() > 0);
        } catch (LatheException e) {
            assertEquals(LatheStatus.NO_DEVICE, e.status(), e.getMessage());
            assertTrue(e.getMessage().contains("driver") || e.getMessage().contains("device"), e.getMessage());
        }
    }
}
