// K/V cache write: each new token's K and V rows go to their slot in the paged pools.
//
// Algorithm: one thread per element (grid-stride); slot = slot_mapping[token].
// Roofline: 16 bytes moved per element (read K and V, write both), bandwidth bound.
// Variants: 1. scalar grid-stride (this file).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "../common/launch_config.cuh"

namespace lathe {

// k_cache[slot_mapping[t], :] = k[t, :], same for v; a slot outside the cache is skipped (the
// host checks slots before launching, so this is only a guard against reading outside).
__global__ void write_kv_kernel(float* __restrict__ k_cache, float* __restrict__ v_cache,
                                const float* __restrict__ k, const float* __restrict__ v,
                                const int32_t* __restrict__ slot_mapping, int64_t tokens, int64_t row_floats,
                                int64_t num_slots) {
    const int64_t n = tokens * row_floats;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / row_floats;
        const int64_t slot = slot_mapping[t];
        if (slot < 0 || slot >= num_slots) continue;
        const int64_t dst = slot * row_floats + i % row_floats;
        k_cache[dst] = k[i];
        v_cache[dst] = v[i];
    }
}

inline cudaError_t launch_write_kv(float* k_cache, float* v_cache, const float* k, const float* v,
                                   const int32_t* slot_mapping, int64_t tokens, int64_t row_floats,
                                   int64_t num_slots, cudaStream_t s) {
    write_kv_kernel<<<elementwise_blocks(tokens * row_floats), kElementwiseThreads, 0, s>>>(
        k_cache, v_cache, k, v, slot_mapping, tokens, row_floats, num_slots);
    return cudaGetLastError();
}

}  // namespace lathe
