#include "status.h"

#include <stdarg.h>
#include <stdio.h>

namespace lathe {

namespace {
// NOTE: one message per thread, like errno: the JVM may run ops and the pool's cleaner on
// different threads, and a shared buffer would let one thread read another's failure.
thread_local char last_error[1024] = "";
}  // namespace

int32_t fail(int32_t status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}

void clear_error() { last_error[0] = '\0'; }

int32_t cuda_status(cudaError_t err, const char* what) {
    if (err == cudaSuccess) {
        return LATHE_OK;
    }
    // Clear the sticky "last error" of non-fatal failures so the next call starts clean.
    cudaGetLastError();
    int32_t status = LATHE_ERR_CUDA;
    if (err == cudaErrorMemoryAllocation) {
        status = LATHE_ERR_OUT_OF_MEMORY;
    } else if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
               err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDevice) {
        status = LATHE_ERR_NO_DEVICE;
    }
    return fail(status, "%s: %s: %s", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

}  // namespace lathe

extern "C" const char* lathe_last_error(void) { return lathe::last_error; }
