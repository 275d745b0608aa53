// The cuBLAS FP16 baseline the kernel benchmarks compare against, reached through dlopen so the
// library never needs cuBLAS to load (users' machines may have only the driver). It is a
// benchmark reference, not an engine path.
#include <dlfcn.h>
#include <library_types.h>
#include <stdio.h>
#include <stdlib.h>

#include <mutex>

#include "handles.h"

namespace {

// The few cuBLAS declarations used (cublas_api.h, CUDA 11+; the ABI is stable across 12 and 13).
using cublas_handle = void*;
using cublas_create_fn = int (*)(cublas_handle*);
using cublas_set_stream_fn = int (*)(cublas_handle, cudaStream_t);
using cublas_gemm_ex_fn = int (*)(cublas_handle, int, int, int, int, int, const void*, const void*, cudaDataType_t,
                                  int, const void*, cudaDataType_t, int, const void*, void*, cudaDataType_t, int, int,
                                  int);
constexpr int kCublasOpN = 0;
constexpr int kCublasOpT = 1;
constexpr int kCublasCompute32F = 68;
constexpr int kCublasGemmDefault = -1;

struct Cublas {
    bool loaded = false;
    char error[512] = "";
    cublas_create_fn create = nullptr;
    cublas_set_stream_fn set_stream = nullptr;
    cublas_gemm_ex_fn gemm_ex = nullptr;
    cublas_handle handles[64] = {};  // one per device, created on first use
};

Cublas& cublas() {
    static Cublas c;
    static std::once_flag once;
    std::call_once(once, [] {
        const char* override_path = getenv("LATHE_CUBLAS_LIB");
        const char* candidates[] = {override_path, "libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13"};
        void* lib = nullptr;
        for (const char* name : candidates) {
            if (name != nullptr && (lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
        }
        if (lib == nullptr) {
            snprintf(c.error, sizeof c.error, "cuBLAS 13 not found (tried $LATHE_CUBLAS_LIB, libcublas.so.13, "
                     "/usr/local/cuda/lib64/libcublas.so.13): %s", dlerror());
            return;
        }
        c.create = reinterpret_cast<cublas_create_fn>(dlsym(lib, "cublasCreate_v2"));
        c.set_stream = reinterpret_cast<cublas_set_stream_fn>(dlsym(lib, "cublasSetStream_v2"));
        c.gemm_ex = reinterpret_cast<cublas_gemm_ex_fn>(dlsym(lib, "cublasGemmEx"));
        if (c.create == nullptr || c.set_stream == nullptr || c.gemm_ex == nullptr) {
            snprintf(c.error, sizeof c.error, "the cuBLAS library found lacks cublasCreate_v2/cublasSetStream_v2/cublasGemmEx");
            return;
        }
        c.loaded = true;
    });
    return c;
}

std::mutex handle_mutex;

}  // namespace

extern "C" int32_t lathe_cublas_gemm_f16(lathe_stream* stream, const void* weight, const void* x, float* out,
                                         int64_t rows, int64_t cols, int64_t tokens) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows > 0 && cols > 0 && tokens > 0 && rows <= 0x7fffffff && cols <= 0x7fffffff &&
                      tokens <= 0x7fffffff,
                  "shape rows=%lld cols=%lld tokens=%lld must be positive and fit an int", (long long)rows,
                  (long long)cols, (long long)tokens);
    LATHE_REQUIRE(weight != nullptr && x != nullptr && out != nullptr, "weight, x or out is NULL");
    Cublas& c = cublas();
    if (!c.loaded) return lathe::fail(LATHE_ERR_UNSUPPORTED, "%s", c.error);
    LATHE_REQUIRE(stream->device >= 0 && stream->device < 64, "device %d is beyond the 64 this baseline tracks",
                  stream->device);
    cublas_handle handle;
    {
        std::lock_guard<std::mutex> lock(handle_mutex);
        if (c.handles[stream->device] == nullptr) {
            int status = c.create(&c.handles[stream->device]);
            if (status != 0) return lathe::fail(LATHE_ERR_CUDA, "cublasCreate_v2 failed with status %d", status);
        }
        handle = c.handles[stream->device];
    }
    int status = c.set_stream(handle, stream->stream);
    if (status != 0) return lathe::fail(LATHE_ERR_CUDA, "cublasSetStream_v2 failed with status %d", status);
    // Row-major out[tokens, rows] = x[tokens, cols] . W[rows, cols]^T is, column-major,
    // C (rows x tokens) = op_T(W as cols x rows) . (x as cols x tokens).
    const float alpha = 1.0f, beta = 0.0f;
    status = c.gemm_ex(handle, kCublasOpT, kCublasOpN, (int)rows, (int)tokens, (int)cols, &alpha, weight, CUDA_R_16F,
                       (int)cols, x, CUDA_R_16F, (int)cols, &beta, out, CUDA_R_32F, (int)rows, kCublasCompute32F,
                       kCublasGemmDefault);
    if (status != 0) return lathe::fail(LATHE_ERR_CUDA, "cublasGemmEx failed with status %d", status);
    return lathe::launch_status(cudaSuccess, "cublasGemmEx");
}
