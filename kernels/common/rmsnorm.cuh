// RMSNorm: out[t, :] = x[t, :] * weight / sqrt(mean(x[t, :]^2) + eps).
//
// Algorithm: one block per row; each thread sums squares over a strided slice, a block
// reduction gives the row's scale, then the same threads write the scaled row.
// Roofline: reads x twice (the second read hits L1/L2 for rows up to ~100 KB) and the weight,
// writes out: ~12 bytes and 3 FLOPs per element, bandwidth bound.
// Variants: 1. block per row, scalar loads (this file).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "reduce.cuh"

namespace lathe {

constexpr int kRmsNormThreads = 256;

__global__ void rmsnorm_kernel(float* out, const float* x, const float* __restrict__ weight, int64_t cols, float eps) {
    __shared__ float scratch[32];
    const float* row = x + blockIdx.x * cols;
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) sum += row[i] * row[i];
    sum = block_sum(sum, scratch);
    const float scale = rsqrtf(sum / static_cast<float>(cols) + eps);
    // NOTE: out may alias x: each element is read before it is written, by the same thread.
    float* dst = out + blockIdx.x * cols;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = row[i] * scale * weight[i];
}

inline cudaError_t launch_rmsnorm(float* out, const float* x, const float* weight, int64_t rows, int64_t cols,
                                  float eps, cudaStream_t s) {
    rmsnorm_kernel<<<static_cast<unsigned>(rows), kRmsNormThreads, 0, s>>>(out, x, weight, cols, eps);
    return cudaGetLastError();
}

}  // namespace lathe
