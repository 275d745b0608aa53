// Devices, streams, buffers, copies and events: the lathe.h entry points that launch no kernel.
#include <stdio.h>
#include <string.h>

#include "handles.h"

using lathe::clear_error;
using lathe::fail;

extern "C" {

int32_t lathe_abi_version(int32_t* version) {
    clear_error();
    LATHE_REQUIRE(version != nullptr, "version is NULL");
    *version = LATHE_ABI_VERSION;
    return LATHE_OK;
}

int32_t lathe_driver_version(int32_t* version) {
    clear_error();
    LATHE_REQUIRE(version != nullptr, "version is NULL");
    int v = 0;
    // NOTE: cudaDriverGetVersion reports 0 (success) when no driver is installed; that is an
    // answer here, and lathe_device_count is where "no driver" becomes an error.
    LATHE_CUDA(cudaDriverGetVersion(&v));
    *version = v;
    return LATHE_OK;
}

int32_t lathe_runtime_version(int32_t* version) {
    clear_error();
    LATHE_REQUIRE(version != nullptr, "version is NULL");
    int v = 0;
    LATHE_CUDA(cudaRuntimeGetVersion(&v));
    *version = v;
    return LATHE_OK;
}

int32_t lathe_device_count(int32_t* count) {
    clear_error();
    LATHE_REQUIRE(count != nullptr, "count is NULL");
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        *count = 0;
        int driver = 0;
        cudaDriverGetVersion(&driver);
        int runtime = 0;
        cudaRuntimeGetVersion(&runtime);
        cudaGetLastError();
        if (driver == 0) {
            return fail(LATHE_ERR_NO_DEVICE, "no CUDA driver found (libcuda.so.1 did not load: %s); "
                        "this library needs an NVIDIA driver for CUDA %d.%d or newer",
                        cudaGetErrorString(err), runtime / 1000, (runtime % 1000) / 10);
        }
        if (driver < runtime) {
            return fail(LATHE_ERR_NO_DEVICE, "the NVIDIA driver supports CUDA %d.%d but this library was built "
                        "with CUDA %d.%d: update the driver (%s)", driver / 1000, (driver % 1000) / 10,
                        runtime / 1000, (runtime % 1000) / 10, cudaGetErrorString(err));
        }
        return fail(LATHE_ERR_NO_DEVICE, "no usable CUDA device: cudaGetDeviceCount: %s: %s",
                    cudaGetErrorName(err), cudaGetErrorString(err));
    }
    *count = n;
    if (n == 0) {
        return fail(LATHE_ERR_NO_DEVICE, "the CUDA driver reports no devices");
    }
    return LATHE_OK;
}

int32_t lathe_context_create(int32_t device, lathe_context** out) {
    clear_error();
    LATHE_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    int32_t count = 0;
    int32_t status = lathe_device_count(&count);
    if (status != LATHE_OK) return status;
    LATHE_REQUIRE(device >= 0 && device < count, "device %d does not exist (the driver sees %d)", device, count);
    cudaDeviceProp prop;
    LATHE_CUDA(cudaGetDeviceProperties(&prop, device));
    // The library holds sm_80/86/89/90a code and compute_90 PTX: an sm_90+ device JIT-compiles
    // the PTX, anything older than sm_80 has nothing it can run.
    if (prop.major < 8) {
        return fail(LATHE_ERR_NO_DEVICE, "device %d (%s) has compute capability %d.%d; Lathe's CUDA kernels "
                    "need 8.0 or newer (A100, RTX 30xx, L4, H100 and later)", device, prop.name, prop.major, prop.minor);
    }
    LATHE_CUDA(cudaSetDevice(device));
    LATHE_CUDA(cudaFree(nullptr));  // creates the primary context now, so failures surface here
    lathe_context* ctx = new lathe_context();
    ctx->device = device;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    ctx->multiprocessors = prop.multiProcessorCount;
    snprintf(ctx->name, sizeof ctx->name, "%s", prop.name);
    *out = ctx;
    return LATHE_OK;
}

int32_t lathe_context_destroy(lathe_context* ctx) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    delete ctx;
    return LATHE_OK;
}

int32_t lathe_device_name(lathe_context* ctx, char* name, int64_t capacity) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(name != nullptr, "name is NULL");
    LATHE_REQUIRE(capacity > 0, "capacity must be positive, got %lld", (long long)capacity);
    size_t n = strlen(ctx->name);
    if ((int64_t)n > capacity - 1) n = (size_t)(capacity - 1);
    memcpy(name, ctx->name, n);
    name[n] = '\0';
    return LATHE_OK;
}

int32_t lathe_device_compute_capability(lathe_context* ctx, int32_t* major, int32_t* minor) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(major != nullptr && minor != nullptr, "major or minor is NULL");
    *major = ctx->cc_major;
    *minor = ctx->cc_minor;
    return LATHE_OK;
}

int32_t lathe_device_memory(lathe_context* ctx, int64_t* free_bytes, int64_t* total_bytes) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(free_bytes != nullptr && total_bytes != nullptr, "free_bytes or total_bytes is NULL");
    LATHE_CUDA(cudaSetDevice(ctx->device));
    size_t f = 0, t = 0;
    LATHE_CUDA(cudaMemGetInfo(&f, &t));
    *free_bytes = (int64_t)f;
    *total_bytes = (int64_t)t;
    return LATHE_OK;
}

int32_t lathe_device_multiprocessors(lathe_context* ctx, int32_t* count) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(count != nullptr, "count is NULL");
    *count = ctx->multiprocessors;
    return LATHE_OK;
}

int32_t lathe_stream_create(lathe_context* ctx, lathe_stream** out) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    LATHE_CUDA(cudaSetDevice(ctx->device));
    cudaStream_t s;
    LATHE_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    lathe_stream* stream = new lathe_stream();
    stream->device = ctx->device;
    stream->stream = s;
    stream->multiprocessors = ctx->multiprocessors;
    stream->scratch = nullptr;
    stream->scratch_bytes = 0;
    stream->capturing = false;
    stream->captured = false;
    *out = stream;
    return LATHE_OK;
}

int32_t lathe_stream_destroy(lathe_stream* stream) {
    LATHE_ENTER_STREAM(stream);
    if (stream->capturing) {  // a capture left open: end it and drop what it recorded
        cudaGraph_t partial = nullptr;
        cudaStreamEndCapture(stream->stream, &partial);
        if (partial != nullptr) cudaGraphDestroy(partial);
        cudaGetLastError();
        stream->capturing = false;
    }
    cudaError_t err = cudaSuccess;
    if (stream->scratch != nullptr) err = cudaFreeAsync(stream->scratch, stream->stream);
    for (void* old : stream->retired) {
        const cudaError_t freed = cudaFreeAsync(old, stream->stream);
        if (err == cudaSuccess) err = freed;
    }
    const cudaError_t destroyed = cudaStreamDestroy(stream->stream);
    if (err == cudaSuccess) err = destroyed;
    delete stream;
    return lathe::cuda_status(err, "cudaStreamDestroy");
}

int32_t lathe_stream_synchronize(lathe_stream* stream) {
    LATHE_ENTER_STREAM(stream);
    LATHE_CUDA(cudaStreamSynchronize(stream->stream));
    return LATHE_OK;
}

int32_t lathe_buffer_alloc(lathe_context* ctx, int64_t bytes, lathe_buffer** out) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(out != nullptr, "out is NULL");
    LATHE_REQUIRE(bytes > 0, "buffer size must be positive, got %lld", (long long)bytes);
    *out = nullptr;
    LATHE_CUDA(cudaSetDevice(ctx->device));
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, (size_t)bytes);
    if (err != cudaSuccess) {
        lathe::cuda_status(err, "cudaMalloc");
        size_t f = 0, t = 0;
        cudaMemGetInfo(&f, &t);
        cudaGetLastError();
        return fail(err == cudaErrorMemoryAllocation ? LATHE_ERR_OUT_OF_MEMORY : LATHE_ERR_CUDA,
                    "cudaMalloc of %lld bytes failed (%s); device has %lld of %lld bytes free", (long long)bytes,
                    cudaGetErrorString(err), (long long)f, (long long)t);
    }
    *out = new lathe_buffer{ctx->device, p, bytes};
    return LATHE_OK;
}

int32_t lathe_buffer_free(lathe_buffer* buffer) {
    clear_error();
    LATHE_REQUIRE(buffer != nullptr, "buffer is NULL");
    LATHE_CUDA(cudaSetDevice(buffer->device));
    cudaError_t err = cudaFree(buffer->pointer);
    delete buffer;
    return lathe::cuda_status(err, "cudaFree");
}

int32_t lathe_buffer_device_pointer(lathe_buffer* buffer, void** device_pointer) {
    clear_error();
    LATHE_REQUIRE(buffer != nullptr, "buffer is NULL");
    LATHE_REQUIRE(device_pointer != nullptr, "device_pointer is NULL");
    *device_pointer = buffer->pointer;
    return LATHE_OK;
}

int32_t lathe_buffer_size(lathe_buffer* buffer, int64_t* bytes) {
    clear_error();
    LATHE_REQUIRE(buffer != nullptr, "buffer is NULL");
    LATHE_REQUIRE(bytes != nullptr, "bytes is NULL");
    *bytes = buffer->bytes;
    return LATHE_OK;
}

int32_t lathe_memcpy_h2d(lathe_stream* stream, void* device_dst, const void* host_src, int64_t bytes) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(bytes >= 0, "bytes must not be negative, got %lld", (long long)bytes);
    if (bytes == 0) return LATHE_OK;
    LATHE_REQUIRE(device_dst != nullptr && host_src != nullptr, "device_dst or host_src is NULL");
    // NOTE: from pageable memory the copy is staged before cudaMemcpyAsync returns, so the caller
    // may free or reuse host_src at once (what the header promises); pinned memory is not used.
    LATHE_CUDA(cudaMemcpyAsync(device_dst, host_src, (size_t)bytes, cudaMemcpyHostToDevice, stream->stream));
    return LATHE_OK;
}

int32_t lathe_memcpy_d2h(lathe_stream* stream, void* host_dst, const void* device_src, int64_t bytes) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(bytes >= 0, "bytes must not be negative, got %lld", (long long)bytes);
    if (bytes == 0) return LATHE_OK;
    LATHE_REQUIRE(host_dst != nullptr && device_src != nullptr, "host_dst or device_src is NULL");
    LATHE_CUDA(cudaMemcpyAsync(host_dst, device_src, (size_t)bytes, cudaMemcpyDeviceToHost, stream->stream));
    LATHE_CUDA(cudaStreamSynchronize(stream->stream));
    return LATHE_OK;
}

int32_t lathe_memcpy_d2d(lathe_stream* stream, void* device_dst, const void* device_src, int64_t bytes) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(bytes >= 0, "bytes must not be negative, got %lld", (long long)bytes);
    if (bytes == 0) return LATHE_OK;
    LATHE_REQUIRE(device_dst != nullptr && device_src != nullptr, "device_dst or device_src is NULL");
    LATHE_CUDA(cudaMemcpyAsync(device_dst, device_src, (size_t)bytes, cudaMemcpyDeviceToDevice, stream->stream));
    return LATHE_OK;
}

int32_t lathe_memset(lathe_stream* stream, void* device_dst, int32_t value, int64_t bytes) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(bytes >= 0, "bytes must not be negative, got %lld", (long long)bytes);
    LATHE_REQUIRE(value >= 0 && value <= 255, "value must be a byte (0..255), got %d", value);
    if (bytes == 0) return LATHE_OK;
    LATHE_REQUIRE(device_dst != nullptr, "device_dst is NULL");
    LATHE_CUDA(cudaMemsetAsync(device_dst, value, (size_t)bytes, stream->stream));
    return LATHE_OK;
}

int32_t lathe_event_create(lathe_context* ctx, lathe_event** out) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    LATHE_CUDA(cudaSetDevice(ctx->device));
    cudaEvent_t e;
    LATHE_CUDA(cudaEventCreate(&e));
    *out = new lathe_event{ctx->device, e};
    return LATHE_OK;
}

int32_t lathe_event_destroy(lathe_event* event) {
    clear_error();
    LATHE_REQUIRE(event != nullptr, "event is NULL");
    LATHE_CUDA(cudaSetDevice(event->device));
    cudaError_t err = cudaEventDestroy(event->event);
    delete event;
    return lathe::cuda_status(err, "cudaEventDestroy");
}

int32_t lathe_event_record(lathe_event* event, lathe_stream* stream) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(event != nullptr, "event is NULL");
    LATHE_REQUIRE(event->device == stream->device, "event (device %d) and stream (device %d) differ",
                  event->device, stream->device);
    LATHE_CUDA(cudaEventRecord(event->event, stream->stream));
    return LATHE_OK;
}

int32_t lathe_event_synchronize(lathe_event* event) {
    clear_error();
    LATHE_REQUIRE(event != nullptr, "event is NULL");
    LATHE_CUDA(cudaEventSynchronize(event->event));
    return LATHE_OK;
}

int32_t lathe_event_elapsed_ms(lathe_event* start, lathe_event* end, float* milliseconds) {
    clear_error();
    LATHE_REQUIRE(start != nullptr && end != nullptr, "start or end event is NULL");
    LATHE_REQUIRE(milliseconds != nullptr, "milliseconds is NULL");
    LATHE_CUDA(cudaEventSynchronize(end->event));
    LATHE_CUDA(cudaEventElapsedTime(milliseconds, start->event, end->event));
    return LATHE_OK;
}

}  // extern "C"
