// Error state shared by every entry point: a thread-local message and helpers that turn a failed
// check or CUDA call into a lathe_status with a message naming what failed.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "lathe.h"

namespace lathe {

// Records the message (printf-style) for lathe_last_error() and returns `status`.
int32_t fail(int32_t status, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Clears the thread's message; every entry point starts with it.
void clear_error();

// LATHE_OK when err is cudaSuccess, else LATHE_ERR_CUDA (or OUT_OF_MEMORY / NO_DEVICE) with
// "<what>: <cuda error name>: <cuda error string>".
int32_t cuda_status(cudaError_t err, const char* what);

// Checks the launch that just happened (configuration errors show up here, not at sync).
inline int32_t launch_status(cudaError_t launcher_result, const char* kernel) {
    if (launcher_result == cudaSuccess) {
        launcher_result = cudaGetLastError();
    }
    return cuda_status(launcher_result, kernel);
}

}  // namespace lathe

// Returns LATHE_ERR_INVALID_ARGUMENT with the message when `cond` does not hold.
#define LATHE_REQUIRE(cond, ...)                                            \
    do {                                                                    \
        if (!(cond)) return ::lathe::fail(LATHE_ERR_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

// Returns the CUDA failure (with the call's text) when `call` does not succeed.
#define LATHE_CUDA(call)                                                    \
    do {                                                                    \
        int32_t lathe_status_ = ::lathe::cuda_status((call), #call);        \
        if (lathe_status_ != LATHE_OK) return lathe_status_;                \
    } while (0)

#define LATHE_REQUIRE_ALIGNED(ptr, bytes, name)                             \
    LATHE_REQUIRE((reinterpret_cast<uintptr_t>(ptr) % (bytes)) == 0,        \
                  "%s must be %d-byte aligned (got %p)", name, (int)(bytes), (const void*)(ptr))
