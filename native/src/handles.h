// The structs behind lathe.h's opaque handles. Each records its device so that an entry point
// can make it current on whatever thread calls (the JVM may call from several).
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "status.h"

struct lathe_context {
    int device;
    int cc_major;
    int cc_minor;
    int multiprocessors;
    char name[256];
};

struct lathe_stream {
    int device;
    cudaStream_t stream;
    int multiprocessors;        // of its device, for kernels that size their grid to the chip
    void* scratch;              // stream-ordered workspace (split-K partial sums, split-KV
    size_t scratch_bytes;       // attention partials), grown on demand
    bool capturing;             // between lathe_graph_begin_capture and lathe_graph_end_capture
    bool captured;              // a graph was ever captured on this stream: it may hold `scratch`
    std::vector<void*> retired; // scratch outgrown after a capture, freed with the stream
};

struct lathe_buffer {
    int device;
    void* pointer;
    int64_t bytes;
};

struct lathe_event {
    int device;
    cudaEvent_t event;
};

struct lathe_graph {
    int device;
    cudaGraphExec_t exec;
    int64_t nodes;  // nodes of the captured graph (kernels, copies, memsets)
};

namespace lathe {

// Validates the stream handle and makes its device current; the start of every op entry point.
inline int32_t enter_stream(lathe_stream* stream) {
    clear_error();
    LATHE_REQUIRE(stream != nullptr, "stream is NULL");
    LATHE_CUDA(cudaSetDevice(stream->device));
    return LATHE_OK;
}

// At least `bytes` of workspace for work queued on `stream`. Growing frees the old buffer in
// stream order, after every kernel already queued that may read it.
//
// NOTE: a captured graph bakes the scratch address into its kernels, so (1) the scratch cannot
// grow while capturing: the caller runs the same step eagerly first (CudaBackend's warm-up), and
// a capture that would need more fails with LATHE_ERR_UNSUPPORTED instead of recording an
// allocation; (2) once any graph was captured, an outgrown buffer is kept (retired) until the
// stream is destroyed rather than freed, since a live graph may still write to it. Growth at
// least doubles, so the retired buffers add up to less than the live one.
inline int32_t stream_scratch(lathe_stream* stream, size_t bytes, void** out) {
    if (stream->scratch_bytes < bytes) {
        if (stream->capturing) {
            return fail(LATHE_ERR_UNSUPPORTED, "the stream's workspace (%zu bytes) must grow to %zu bytes during a "
                        "graph capture: run the step once uncaptured first", stream->scratch_bytes, bytes);
        }
        const size_t grown = bytes > 2 * stream->scratch_bytes ? bytes : 2 * stream->scratch_bytes;
        if (stream->scratch != nullptr) {
            if (stream->captured) {
                stream->retired.push_back(stream->scratch);
            } else {
                LATHE_CUDA(cudaFreeAsync(stream->scratch, stream->stream));
            }
        }
        stream->scratch = nullptr;
        stream->scratch_bytes = 0;
        LATHE_CUDA(cudaMallocAsync(&stream->scratch, grown, stream->stream));
        stream->scratch_bytes = grown;
    }
    *out = stream->scratch;
    return LATHE_OK;
}

}  // namespace lathe

#define LATHE_ENTER_STREAM(stream)                                          \
    do {                                                                    \
        int32_t lathe_status_ = ::lathe::enter_stream(stream);              \
        if (lathe_status_ != LATHE_OK) return lathe_status_;                \
    } while (0)
