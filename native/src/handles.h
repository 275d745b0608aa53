// The structs behind lathe.h's opaque handles. Each records its device so that an entry point
// can make it current on whatever thread calls (the JVM may call from several).
#pragma once

#include <cuda_runtime.h>

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
    void* scratch;              // stream-ordered workspace (split-K partial sums), grown on demand
    size_t scratch_bytes;
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
inline int32_t stream_scratch(lathe_stream* stream, size_t bytes, void** out) {
    if (stream->scratch_bytes < bytes) {
        if (stream->scratch != nullptr) LATHE_CUDA(cudaFreeAsync(stream->scratch, stream->stream));
        stream->scratch = nullptr;
        stream->scratch_bytes = 0;
        LATHE_CUDA(cudaMallocAsync(&stream->scratch, bytes, stream->stream));
        stream->scratch_bytes = bytes;
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
