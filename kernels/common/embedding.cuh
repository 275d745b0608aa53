// Embedding gather: out[t, :] = dequant(table[tokens[t], :]) for F32/F16/BF16/Q8_0/Q4_0 tables.
//
// Algorithm: one block row per token, threads stride along dim and read one weight each through
// load_weight (the format switch is uniform across the grid, so it costs no divergence).
// Roofline: T * dim * (bytes per weight + 4) bytes; negligible next to a matmul.
// Variants: 1. scalar per element (this file).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "weight_formats.cuh"

namespace lathe {

__global__ void embed_kernel(int format, const void* __restrict__ values, const __half* __restrict__ scales,
                             int64_t vocab, int64_t dim, const int32_t* __restrict__ tokens, float* __restrict__ out) {
    const int64_t t = blockIdx.y;
    const int32_t token = tokens[t];
    const bool valid = token >= 0 && token < vocab;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < dim; i += (int64_t)gridDim.x * blockDim.x) {
        out[t * dim + i] = valid ? load_weight(format, values, scales, token, i, dim) : __int_as_float(0x7fc00000);
    }
}

inline cudaError_t launch_embed(int format, const void* values, const __half* scales, int64_t vocab, int64_t dim,
                                const int32_t* tokens, int64_t n_tokens, float* out, cudaStream_t s) {
    int64_t blocks_x = (dim + 255) / 256;
    if (blocks_x > 64) blocks_x = 64;
    dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(n_tokens));
    embed_kernel<<<grid, 256, 0, s>>>(format, values, scales, vocab, dim, tokens, out);
    return cudaGetLastError();
}

}  // namespace lathe
