// Where does a small op's time go? Times back-to-back launches of one 1 x 4096 RMSNorm
//   1. as a bare CUDA kernel launch (<<<>>>), no checks: the floor of this machine;
//   2. through lathe_rmsnorm (argument checks, cudaSetDevice, launch, status): the C ABI's cost;
// each as host wall-clock per call and as GPU time per op (CUDA events around the loop).
// The Java figure for the same op is KernelBenchmark's "rmsnorm 1x4096" row; the gap from (2)
// to it is the FFM downcall and CudaBackend's own checks.
// Build and run (bench/gpu/launch/run.sh does both): nvcc -O2 -I native/include ... -llathe_cuda
#include <chrono>
#include <cstdio>
#include <cuda_runtime.h>

#include "lathe.h"

__global__ void bare_rmsnorm(float* out, const float* x, const float* w, int cols, float eps) {
    __shared__ float partial[32];
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) sum += x[i] * x[i];
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x < 32) {
        sum = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (threadIdx.x == 0) partial[0] = rsqrtf(sum / cols + eps);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < cols; i += blockDim.x) out[i] = x[i] * partial[0] * w[i];
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        if ((call) != 0) {                                                              \
            std::printf("FAILED %s: %s\n", #call, lathe_last_error());                  \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

int main() {
    const int cols = 4096, launches = 2000, rounds = 5;
    lathe_context* ctx;
    lathe_stream* stream;
    lathe_buffer* buffer;
    lathe_event *start, *end;
    void* base;
    CHECK(lathe_context_create(0, &ctx));
    CHECK(lathe_stream_create(ctx, &stream));
    CHECK(lathe_buffer_alloc(ctx, 3 * cols * sizeof(float), &buffer));
    CHECK(lathe_buffer_device_pointer(buffer, &base));
    CHECK(lathe_event_create(ctx, &start));
    CHECK(lathe_event_create(ctx, &end));
    float* out = static_cast<float*>(base);
    float* x = out + cols;
    float* w = x + cols;
    cudaMemset(base, 0, 3 * cols * sizeof(float));
    cudaStream_t raw;
    cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking);
    cudaEvent_t raw_start, raw_end;
    cudaEventCreate(&raw_start);
    cudaEventCreate(&raw_end);

    for (int round = 0; round < rounds; round++) {
        auto t0 = std::chrono::steady_clock::now();
        cudaEventRecord(raw_start, raw);
        for (int i = 0; i < launches; i++) bare_rmsnorm<<<1, 256, 0, raw>>>(out, x, w, cols, 1e-5f);
        cudaEventRecord(raw_end, raw);
        auto t1 = std::chrono::steady_clock::now();
        cudaEventSynchronize(raw_end);
        float bare_ms = 0;
        cudaEventElapsedTime(&bare_ms, raw_start, raw_end);

        auto t2 = std::chrono::steady_clock::now();
        CHECK(lathe_event_record(start, stream));
        for (int i = 0; i < launches; i++) CHECK(lathe_rmsnorm(stream, out, x, w, 1, cols, 1e-5f));
        CHECK(lathe_event_record(end, stream));
        auto t3 = std::chrono::steady_clock::now();
        CHECK(lathe_event_synchronize(end));
        float abi_ms = 0;
        CHECK(lathe_event_elapsed_ms(start, end, &abi_ms));
        const double us = 1e-3 / launches;
        std::printf("round %d: bare launch %.2f us host, %.2f us GPU per op | lathe_rmsnorm %.2f us host, %.2f us GPU per op\n",
                    round, std::chrono::duration<double, std::nano>(t1 - t0).count() * us,
                    bare_ms * 1e3 / launches,
                    std::chrono::duration<double, std::nano>(t3 - t2).count() * us, abi_ms * 1e3 / launches);
    }
    return 0;
}
