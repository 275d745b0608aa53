// 4-bit GEMVs (W4A16): out[t, r] = sum_i W[r, i] * x[t, i] for two codes of 4-bit weights,
//   INT4 group-wise (the GPTQ / AWQ model): W[r, i] = (q[r, i] - zero[r, i/group]) * scale[r, i/group],
//   NF4 (QLoRA / bitsandbytes): W[r, i] = kNf4[q[r, i]] * absmax[r, i/64], kNf4 the NormalFloat table.
// One kernel template; a decoder turns a 32-bit word of 8 nibbles into 8 weights.
//
// Kernel layout (java/cuda Int4Weights packs it, from floats or from GPTQ's tensors):
//   qweight: uint32 [rows, cols/8]: word j of a row holds values 8j .. 8j+7, value 8j+n in bits
//            4n .. 4n+3 (low nibble first);
//   scales:  half [rows, cols/group];  zeros: uint8 [rows, cols/group];  group in {32, 64, 128}.
// GPTQ stores qweight transposed ([cols/8, rows]); the repacking to rows is done once at upload so
// that a warp reads one output row's words contiguously.
//
// Algorithm: as quant/gemv.cuh: one warp per output row, 4 rows per block; a lane reads one
// 32-bit word (8 weights) per step and FMAs it into TOKENS accumulators; a shuffle sums lanes.
// Roofline (T=1): 0.5 B/weight + 3 B per group of scale and zero: at group 128 ~0.52 B/weight,
// 2 FLOPs per weight: bandwidth bound, like Q4_0.
// NF4 layout: codes as qweight above; absmax float [rows, cols/64] (double-quantized absmax is
// expanded to f32 at upload).
// Variants: 1. warp per row, one word per lane-step, TOKENS in {1, 4} (this file).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace lathe {

constexpr int kInt4Warps = 4;
constexpr int kNf4Block = 64;

// The NormalFloat-4 levels (Dettmers et al., QLoRA, 2023), code 0..15.
__constant__ float kNf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                               -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                               0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                               0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                               0.7229568362236023f, 1.0f};

// A decoder's bind(table) runs once per block before a barrier; table is 16 floats of shared memory.
struct GroupInt4Decoder {
    const __half* scales;  // [rows, cols/group]
    const uint8_t* zeros;  // [rows, cols/group]
    int group;
    __device__ __forceinline__ void bind(float*) {}
    __device__ __forceinline__ void decode(uint32_t packed, int64_t row, int64_t c, int64_t cols, float w[8]) const {
        const int64_t groups = cols / group;
        const int64_t g = (8 * c) / group;
        const float scale = __half2float(scales[row * groups + g]);
        const float zero = static_cast<float>(zeros[row * groups + g]);
#pragma unroll
        for (int n = 0; n < 8; n++) w[n] = (static_cast<float>((packed >> (4 * n)) & 0xfu) - zero) * scale;
    }
};

// NOTE: the levels are read from a shared-memory copy: indexing __constant__ kNf4 with the 8
// different codes of a word serializes the constant cache (one address per pass), which held the
// first NF4 GEMV to 5% of the bandwidth roofline on an H100 (bench/results/gpu-20261122-h100).
struct Nf4Decoder {
    const float* absmax;  // [rows, cols/64]
    const float* levels;  // the 16 NormalFloat levels in shared memory, set by bind()
    __device__ __forceinline__ void bind(float* table) {
        if (threadIdx.x < 16) table[threadIdx.x] = kNf4[threadIdx.x];
        levels = table;
    }
    __device__ __forceinline__ void decode(uint32_t packed, int64_t row, int64_t c, int64_t cols, float w[8]) const {
        const float a = absmax[row * (cols / kNf4Block) + (8 * c) / kNf4Block];
#pragma unroll
        for (int n = 0; n < 8; n++) w[n] = levels[(packed >> (4 * n)) & 0xfu] * a;
    }
};

template <int TOKENS, class Decoder>
__global__ void __launch_bounds__(kInt4Warps * 32) int4_gemv_kernel(const uint32_t* __restrict__ qweight,
                                                                   Decoder weights, int64_t rows, int64_t cols,
                                                                   const float* __restrict__ x, int64_t tokens,
                                                                   float* __restrict__ out) {
    __shared__ float table[16];
    Decoder decoder = weights;
    decoder.bind(table);
    __syncthreads();
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * (int64_t)kInt4Warps + (threadIdx.x >> 5);
    const int64_t t0 = blockIdx.y * (int64_t)TOKENS;
    if (row >= rows) return;
    float acc[TOKENS];
#pragma unroll
    for (int t = 0; t < TOKENS; t++) acc[t] = 0.0f;
    const int64_t words = cols / 8;
    for (int64_t c = lane; c < words; c += 32) {
        const uint32_t packed = __ldg(qweight + row * words + c);
        float w[8];
        decoder.decode(packed, row, c, cols, w);
#pragma unroll
        for (int t = 0; t < TOKENS; t++) {
            if (t0 + t < tokens) {
                const float* xr = x + (t0 + t) * cols + 8 * c;
                const float4 lo = __ldg(reinterpret_cast<const float4*>(xr));
                const float4 hi = __ldg(reinterpret_cast<const float4*>(xr + 4));
                float a = acc[t];
                a = fmaf(w[0], lo.x, a); a = fmaf(w[1], lo.y, a); a = fmaf(w[2], lo.z, a); a = fmaf(w[3], lo.w, a);
                a = fmaf(w[4], hi.x, a); a = fmaf(w[5], hi.y, a); a = fmaf(w[6], hi.z, a); a = fmaf(w[7], hi.w, a);
                acc[t] = a;
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

template <class Decoder>
inline cudaError_t launch_nibble_gemv(const uint32_t* qweight, Decoder decoder, int64_t rows, int64_t cols,
                                      const float* x, int64_t tokens, float* out, cudaStream_t s) {
    const dim3 block(kInt4Warps * 32);
    const unsigned grid_x = static_cast<unsigned>((rows + kInt4Warps - 1) / kInt4Warps);
    if (tokens == 1) {
        int4_gemv_kernel<1, Decoder><<<dim3(grid_x, 1), block, 0, s>>>(qweight, decoder, rows, cols, x, tokens, out);
    } else {
        int4_gemv_kernel<4, Decoder><<<dim3(grid_x, static_cast<unsigned>((tokens + 3) / 4)), block, 0, s>>>(
            qweight, decoder, rows, cols, x, tokens, out);
    }
    return cudaGetLastError();
}

}  // namespace lathe
