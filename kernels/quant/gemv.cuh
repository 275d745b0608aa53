// Dequant GEMV: out[t, r] = sum_i W[r, i] * x[t, i] for a few tokens (decode, small batches),
// W in F32 / F16 / BF16 / Q8_0 / Q4_0 / Q4_K / Q5_K / Q6_K kernel layouts (common/weight_formats.cuh).
//
// Algorithm: one warp per output row, 4 rows per 128-thread block. A lane reads 8 consecutive
// weights per step (F16/BF16: one 16-byte load; Q8_0: 8 bytes; Q4_0: 4 bytes = 8 nibbles) and
// FMAs them into TOKENS accumulators, one per token of the group, so each weight is read from
// DRAM once per TOKENS tokens (Q4_K: 8 bytes of nibbles, the block header from L1; Q6_K: byte
// loads, its 210-byte blocks being only 2-byte aligned); x rows come through L1/L2 (they are small and shared by all
// warps). A warp shuffle sums the lanes. Rows whose length is not a multiple of 8 (odd test
// sizes, never real models) take the scalar variant.
// Roofline (decode, T=1): bytes = rows*cols*bytes_per_weight (+ scales); FLOPs = 2*rows*cols.
// At 0.56 B/weight (Q4_0) that is 3.5 FLOP/B, far under the ~300 FLOP/B ridge of an H100:
// bandwidth bound, the target is ~90% of DRAM bandwidth on the weight bytes.
// Variants:
//   1. warp per row, 8 weights per lane-step, TOKENS in {1, 4} (this file).
//   (next: 2 rows per warp and 32-byte loads for Q4_0; a tensor-core path for 16+ tokens.)
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "../common/weight_formats.cuh"

namespace lathe {

constexpr int kGemvWarps = 4;

// The 8 weights W[row, 8c .. 8c+7] (for Q4_0: the 8 values a lane-step covers, see below).
template <int FORMAT>
struct Gemv8;

template <>
struct Gemv8<kWeightF32> {
    __device__ __forceinline__ static void load(const void* values, const __half*, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(values) + row * cols + 8 * c);
        const float4 a = __ldg(p), b = __ldg(p + 1);
        w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
        w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
    }
};

template <>
struct Gemv8<kWeightF16> {
    __device__ __forceinline__ static void load(const void* values, const __half*, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(values) + row * cols + 8 * c));
        const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 f = __half22float2(h[i]);
            w[2 * i] = f.x;
            w[2 * i + 1] = f.y;
        }
    }
};

template <>
struct Gemv8<kWeightBf16> {
    __device__ __forceinline__ static void load(const void* values, const __half*, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint4 raw =
            __ldg(reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(values) + row * cols + 8 * c));
        const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            // bf16 is the top half of an f32: widening is a shift.
            w[2 * i] = __uint_as_float(words[i] << 16);
            w[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
        }
    }
};

template <>
struct Gemv8<kWeightQ8_0> {
    __device__ __forceinline__ static void load(const void* values, const __half* scales, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint2 raw = __ldg(reinterpret_cast<const uint2*>(static_cast<const int8_t*>(values) + row * cols + 8 * c));
        const float d = __half2float(scales[row * (cols / kQuantGroup) + c / 4]);
        const int8_t* q = reinterpret_cast<const int8_t*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; i++) w[i] = q[i] * d;
    }
};

// Q4_0: lane-step c covers group g = c / 4, bytes 4*(c%4) .. +3 of its 16: values
// 4*(c%4) .. +3 (low nibbles) and 16 + 4*(c%4) .. +3 (high nibbles); x_index says where.
template <>
struct Gemv8<kWeightQ4_0> {
    __device__ __forceinline__ static void load(const void* values, const __half* scales, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint32_t packed =
            __ldg(reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(values) + row * (cols / 2) + 4 * c));
        const float d = __half2float(scales[row * (cols / kQuantGroup) + c / 4]);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t byte = (packed >> (8 * i)) & 0xffu;
            w[i] = (static_cast<int>(byte & 0x0fu) - 8) * d;
            w[4 + i] = (static_cast<int>(byte >> 4) - 8) * d;
        }
    }
};

// Q4_K: lane-step c covers values 8c .. 8c+7 of the row: block c / 32, step s = c % 32 of it:
// chunk s / 8 (64 values), nibble half (s % 8) / 4, bytes 32*chunk + 8*(s % 4) .. +7 of qs.
// The 32 lanes of a warp-step read one whole block, so its header is a broadcast.
template <>
struct Gemv8<kWeightQ4_K> {
    __device__ __forceinline__ static void load(const void* values, const __half*, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint8_t* block = static_cast<const uint8_t*>(values) +
                               (row * (cols / kSuperBlock) + c / 32) * kQ4KBlockBytes;
        const int s = static_cast<int>(c % 32);
        const int chunk = s / 8, high = (s % 8) / 4;
        int sc, m;
        q4k_scale_min(block + 4, 2 * chunk + high, sc, m);
        const float d = half_at(block) * sc;
        const float dmin = half_at(block + 2) * m;
        const uint2 raw = *reinterpret_cast<const uint2*>(block + 16 + 32 * chunk + 8 * (s % 4));
        const uint8_t* q = reinterpret_cast<const uint8_t*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; i++) w[i] = d * (high ? q[i] >> 4 : q[i] & 0x0F) - dmin;
    }
};

// Q5_K: Q4_K's reader over 176-byte blocks (qs at 48) plus the fifth bits: sub-block j = 2 * chunk
// + high takes bit j of qh[l] (qh at 16), l = 8 * (s % 4) .. +7, one more 8-byte load.
template <>
struct Gemv8<kWeightQ5_K> {
    __device__ __forceinline__ static void load(const void* values, const __half*, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint8_t* block = static_cast<const uint8_t*>(values) +
                               (row * (cols / kSuperBlock) + c / 32) * kQ5KBlockBytes;
        const int s = static_cast<int>(c % 32);
        const int chunk = s / 8, high = (s % 8) / 4, j = 2 * chunk + high;
        int sc, m;
        q4k_scale_min(block + 4, j, sc, m);
        const float d = half_at(block) * sc;
        const float dmin = half_at(block + 2) * m;
        const uint2 raw = *reinterpret_cast<const uint2*>(block + 48 + 32 * chunk + 8 * (s % 4));
        const uint2 fifth = *reinterpret_cast<const uint2*>(block + 16 + 8 * (s % 4));
        const uint8_t* q = reinterpret_cast<const uint8_t*>(&raw);
        const uint8_t* h = reinterpret_cast<const uint8_t*>(&fifth);
#pragma unroll
        for (int i = 0; i < 8; i++) w[i] = d * ((high ? q[i] >> 4 : q[i] & 0x0F) | (((h[i] >> j) & 1) << 4)) - dmin;
    }
};

// Q6_K: lane-step c covers values 8c .. 8c+7: within its block, v0 = 8 * (c % 32), half
// h = v0 / 128, quarter k = (v0 % 128) / 32, l0 = v0 % 32; one scale covers all 8. Blocks are
// 210 bytes (2-byte aligned), so bytes are loaded one by one.
template <>
struct Gemv8<kWeightQ6_K> {
    __device__ __forceinline__ static void load(const void* values, const __half*, int64_t row, int64_t c,
                                                int64_t cols, float w[8]) {
        const uint8_t* block = static_cast<const uint8_t*>(values) +
                               (row * (cols / kSuperBlock) + c / 32) * kQ6KBlockBytes;
        const int v0 = 8 * static_cast<int>(c % 32);
        const int h = v0 / 128, k = (v0 % 128) / 32, l0 = v0 % 32;
        const float d = half_at(block + 208) * static_cast<int8_t>(block[192 + 8 * h + l0 / 16 + 2 * k]);
        const uint8_t* low = block + 64 * h + (k & 1) * 32 + l0;
        const uint8_t* high = block + 128 + 32 * h + l0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int low_bits = k >= 2 ? low[i] >> 4 : low[i] & 0x0F;
            const int q = low_bits | (((high[i] >> (2 * k)) & 3) << 4);
            w[i] = d * (q - 32);
        }
    }
};

// Column of x that weight k (0..7) of lane-step c multiplies.
template <int FORMAT>
__device__ __forceinline__ int64_t gemv_x_index(int64_t c, int k) {
    if (FORMAT == kWeightQ4_0) {
        return (c / 4) * kQuantGroup + (c % 4) * 4 + (k < 4 ? k : 16 + (k - 4));
    }
    return 8 * c + k;
}

// Vector path: cols % 8 == 0 (Q8_0/Q4_0: cols % 32 == 0), x and the values 16-byte aligned.
template <int FORMAT, int TOKENS>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(const void* __restrict__ values,
                                                              const __half* __restrict__ scales, int64_t rows,
                                                              int64_t cols, const float* __restrict__ x,
                                                              int64_t tokens, float* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * (int64_t)kGemvWarps + (threadIdx.x >> 5);
    const int64_t t0 = blockIdx.y * (int64_t)TOKENS;
    if (row >= rows) return;
    float acc[TOKENS];
#pragma unroll
    for (int t = 0; t < TOKENS; t++) acc[t] = 0.0f;
    const int64_t steps = cols / 8;
    for (int64_t c = lane; c < steps; c += 32) {
        float w[8];
        Gemv8<FORMAT>::load(values, scales, row, c, cols, w);
#pragma unroll
        for (int t = 0; t < TOKENS; t++) {
            if (t0 + t < tokens) {
                const float* xr = x + (t0 + t) * cols;
                float4 lo, hi;
                if (FORMAT == kWeightQ4_0) {
                    lo = __ldg(reinterpret_cast<const float4*>(xr + gemv_x_index<FORMAT>(c, 0)));
                    hi = __ldg(reinterpret_cast<const float4*>(xr + gemv_x_index<FORMAT>(c, 4)));
                } else {
                    lo = __ldg(reinterpret_cast<const float4*>(xr + 8 * c));
                    hi = __ldg(reinterpret_cast<const float4*>(xr + 8 * c + 4));
                }
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

// Scalar path for dense rows of any length: one weight per lane-step.
template <int TOKENS>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_scalar_kernel(int format, const void* __restrict__ values,
                                                                     const __half* __restrict__ scales, int64_t rows,
                                                                     int64_t cols, const float* __restrict__ x,
                                                                     int64_t tokens, float* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * (int64_t)kGemvWarps + (threadIdx.x >> 5);
    const int64_t t0 = blockIdx.y * (int64_t)TOKENS;
    if (row >= rows) return;
    float acc[TOKENS];
#pragma unroll
    for (int t = 0; t < TOKENS; t++) acc[t] = 0.0f;
    for (int64_t i = lane; i < cols; i += 32) {
        const float w = load_weight(format, values, scales, row, i, cols);
#pragma unroll
        for (int t = 0; t < TOKENS; t++)
            if (t0 + t < tokens) acc[t] = fmaf(w, x[(t0 + t) * cols + i], acc[t]);
    }
#pragma unroll
    for (int t = 0; t < TOKENS; t++) {
        float v = acc[t];
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
        if (lane == 0 && t0 + t < tokens) out[(t0 + t) * rows + row] = v;
    }
}

template <int TOKENS>
inline cudaError_t launch_gemv_tokens(int format, bool vector_path, const void* values, const __half* scales,
                                      int64_t rows, int64_t cols, const float* x, int64_t tokens, float* out,
                                      cudaStream_t s) {
    const int64_t token_groups = (tokens + TOKENS - 1) / TOKENS;
    // NOTE: grid.y is limited to 65535; the entry point splits larger token counts.
    dim3 grid(static_cast<unsigned>((rows + kGemvWarps - 1) / kGemvWarps), static_cast<unsigned>(token_groups));
    dim3 block(kGemvWarps * 32);
    if (!vector_path) {
        gemv_scalar_kernel<TOKENS><<<grid, block, 0, s>>>(format, values, scales, rows, cols, x, tokens, out);
        return cudaGetLastError();
    }
    switch (format) {
        case kWeightF32: gemv_kernel<kWeightF32, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightF16: gemv_kernel<kWeightF16, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightBf16: gemv_kernel<kWeightBf16, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightQ8_0: gemv_kernel<kWeightQ8_0, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightQ4_0: gemv_kernel<kWeightQ4_0, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightQ4_K: gemv_kernel<kWeightQ4_K, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightQ5_K: gemv_kernel<kWeightQ5_K, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        case kWeightQ6_K: gemv_kernel<kWeightQ6_K, TOKENS><<<grid, block, 0, s>>>(values, scales, rows, cols, x, tokens, out); break;
        default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// out [tokens, rows] = x [tokens, cols] . W^T; one token uses the TOKENS=1 kernel, more the
// TOKENS=4 one (each weight read once per 4 tokens).
inline cudaError_t launch_gemv(int format, bool vector_path, const void* values, const __half* scales, int64_t rows,
                               int64_t cols, const float* x, int64_t tokens, float* out, cudaStream_t s) {
    if (tokens == 1) return launch_gemv_tokens<1>(format, vector_path, values, scales, rows, cols, x, tokens, out, s);
    return launch_gemv_tokens<4>(format, vector_path, values, scales, rows, cols, x, tokens, out, s);
}

}  // namespace lathe
