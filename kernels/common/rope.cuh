// Rotary position embedding, in place: pair i of every head of token t turns by
// positions[t] * inv_freq[i]. INTERLEAVED pairs dims (2i, 2i+1); HALF_SPLIT pairs (i, i + d/2).
//
// Algorithm: one thread per (token, head, pair); the angle is computed in f32 as the CPU
// reference does, then sincosf (full-range reduction, no fast math: positions reach 1e5 rad).
// Roofline: 8 bytes read and written per element, ~20 FLOPs per pair: bandwidth bound.
// Variants: 1. thread per pair (this file).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

namespace lathe {

constexpr int kRopeInterleaved = 0;
constexpr int kRopeHalfSplit = 1;

__global__ void rope_kernel(float* x, const int32_t* __restrict__ positions, const float* __restrict__ inv_freq,
                            int64_t tokens, int64_t heads, int64_t head_dim, int style) {
    const int64_t half = head_dim / 2;
    const int64_t pairs = tokens * heads * half;
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < pairs; p += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = p % half;
        const int64_t head = p / half;  // token * heads + h
        const int64_t t = head / heads;
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        float sin_a, cos_a;
        sincosf(angle, &sin_a, &cos_a);
        float* base = x + head * head_dim;
        const int64_t a = style == kRopeInterleaved ? 2 * i : i;
        const int64_t b = style == kRopeInterleaved ? a + 1 : i + half;
        const float x0 = base[a];
        const float x1 = base[b];
        base[a] = x0 * cos_a - x1 * sin_a;
        base[b] = x0 * sin_a + x1 * cos_a;
    }
}

inline cudaError_t launch_rope(float* x, const int32_t* positions, const float* inv_freq, int64_t tokens,
                               int64_t heads, int64_t head_dim, int style, cudaStream_t s) {
    const int64_t pairs = tokens * heads * (head_dim / 2);
    int64_t blocks = (pairs + 255) / 256;
    if (blocks > 65535 * 8) blocks = 65535 * 8;
    if (blocks < 1) blocks = 1;
    rope_kernel<<<static_cast<unsigned>(blocks), 256, 0, s>>>(x, positions, inv_freq, tokens, heads, head_dim, style);
    return cudaGetLastError();
}

}  // namespace lathe
