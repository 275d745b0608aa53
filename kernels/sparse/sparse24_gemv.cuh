// 2:4 structured-sparse GEMV (FP16 weights): out[t, r] = sum_i W[r, i] * x[t, i] where every group
// of 4 consecutive weights along a row holds at most 2 non-zeros, stored compressed.
//
// Layout (java/cuda Sparse24Weights compresses it):
//   values: half [rows, cols/2]: the 2 kept weights of each group of 4, in column order;
//   meta:   uint32 [rows, cols/32]: nibble g of word j describes group 8j+g: bits 0-1 the column
//           (0..3) of its first kept weight, bits 2-3 of its second (first < second), the
//           2-bit-index-per-kept-value metadata of NVIDIA's sparse tensor cores.
// Algorithm: as quant/gemv.cuh, one warp per row; a lane-step covers 32 columns: one meta word and
// 16 kept halves (two 16-byte loads), each multiplied with the x value its index selects.
// Roofline (T=1): 1 byte of values + 1/8 byte of metadata per weight = 56% of dense FP16's bytes.
// Variants: 1. GEMV for decode (this file).
//   (next: the tensor-core GEMM on mma.sp for 16+ tokens, which reads this same layout.)
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace lathe {

constexpr int kSparseWarps = 4;

template <int TOKENS>
__global__ void __launch_bounds__(kSparseWarps * 32) sparse24_gemv_kernel(const __half* __restrict__ values,
                                                                         const uint32_t* __restrict__ meta,
                                                                         int64_t rows, int64_t cols,
                                                                         const float* __restrict__ x, int64_t tokens,
                                                                         float* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * (int64_t)kSparseWarps + (threadIdx.x >> 5);
    const int64_t t0 = blockIdx.y * (int64_t)TOKENS;
    if (row >= rows) return;
    float acc[TOKENS];
#pragma unroll
    for (int t = 0; t < TOKENS; t++) acc[t] = 0.0f;
    const int64_t words = cols / 32;
    for (int64_t j = lane; j < words; j += 32) {
        const uint32_t m = __ldg(meta + row * words + j);
        const uint4* v = reinterpret_cast<const uint4*>(values + row * (cols / 2) + 16 * j);
        const uint4 raw0 = __ldg(v), raw1 = __ldg(v + 1);
        const uint32_t words16[8] = {raw0.x, raw0.y, raw0.z, raw0.w, raw1.x, raw1.y, raw1.z, raw1.w};
#pragma unroll
        for (int g = 0; g < 8; g++) {
            const float2 kept = __half22float2(*reinterpret_cast<const __half2*>(&words16[g]));
            const int c0 = static_cast<int>((m >> (4 * g)) & 3u);
            const int c1 = static_cast<int>((m >> (4 * g + 2)) & 3u);
            const int64_t base = 32 * j + 4 * g;
#pragma unroll
            for (int t = 0; t < TOKENS; t++) {
                if (t0 + t < tokens) {
                    const float* xr = x + (t0 + t) * cols + base;
                    acc[t] = fmaf(kept.x, __ldg(xr + c0), acc[t]);
                    acc[t] = fmaf(kept.y, __ldg(xr + c1), acc[t]);
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < TOKENS; t++) {
        float v = acc[t];
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
        if (lane == 0 && t0 + t < tokens) out[(t0 + t) * rows + row] = v;
    }
}

inline cudaError_t launch_sparse24_gemv(const __half* values, const uint32_t* meta, int64_t rows, int64_t cols,
                                        const float* x, int64_t tokens, float* out, cudaStream_t s) {
    const dim3 block(kSparseWarps * 32);
    const unsigned grid_x = static_cast<unsigned>((rows + kSparseWarps - 1) / kSparseWarps);
    if (tokens == 1) {
        sparse24_gemv_kernel<1><<<dim3(grid_x, 1), block, 0, s>>>(values, meta, rows, cols, x, tokens, out);
    } else {
        sparse24_gemv_kernel<4><<<dim3(grid_x, static_cast<unsigned>((tokens + 3) / 4)), block, 0, s>>>(
            values, meta, rows, cols, x, tokens, out);
    }
    return cudaGetLastError();
}

}  // namespace lathe
