// K/V cache write: each new token's K and V rows go to their slot in the paged pools, stored in
// the pools' element type (kv_dtype.cuh: f32 as is, f16/bf16 rounded to nearest even).
//
// Algorithm: one thread per element (grid-stride); slot = slot_mapping[token].
// Roofline: per element 8 bytes read (K and V, f32) and 2 * sizeof(T) written; bandwidth bound.
// Variants: 1. scalar grid-stride, f32 pools. 2. templated on the pool element type (this file).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "../common/launch_config.cuh"
#include "kv_dtype.cuh"

namespace lathe {

// k_cache[slot_mapping[t], :] = narrow(k[t, :]), same for v; a slot outside the cache is skipped
// (the host checks slots before launching, so this is only a guard against writing outside).
template <typename T>
__global__ void write_kv_kernel(T* __restrict__ k_cache, T* __restrict__ v_cache, const float* __restrict__ k,
                                const float* __restrict__ v, const int32_t* __restrict__ slot_mapping, int64_t tokens,
                                int64_t row_floats, int64_t num_slots) {
    const int64_t n = tokens * row_floats;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / row_floats;
        const int64_t slot = slot_mapping[t];
        if (slot < 0 || slot >= num_slots) continue;
        const int64_t dst = slot * row_floats + i % row_floats;
        k_cache[dst] = kv_narrow<T>(k[i]);
        v_cache[dst] = kv_narrow<T>(v[i]);
    }
}

template <typename T>
inline cudaError_t launch_write_kv_as(void* k_cache, void* v_cache, const float* k, const float* v,
                                      const int32_t* slot_mapping, int64_t tokens, int64_t row_floats,
                                      int64_t num_slots, cudaStream_t s) {
    write_kv_kernel<T><<<elementwise_blocks(tokens * row_floats), kElementwiseThreads, 0, s>>>(
        static_cast<T*>(k_cache), static_cast<T*>(v_cache), k, v, slot_mapping, tokens, row_floats, num_slots);
    return cudaGetLastError();
}

// kv_dtype: kKvF32, kKvF16 or kKvBf16 (the entry point has checked it).
inline cudaError_t launch_write_kv(int32_t kv_dtype, void* k_cache, void* v_cache, const float* k, const float* v,
                                   const int32_t* slot_mapping, int64_t tokens, int64_t row_floats,
                                   int64_t num_slots, cudaStream_t s) {
    switch (kv_dtype) {
        case kKvF32:
            return launch_write_kv_as<float>(k_cache, v_cache, k, v, slot_mapping, tokens, row_floats, num_slots, s);
        case kKvF16:
            return launch_write_kv_as<__half>(k_cache, v_cache, k, v, slot_mapping, tokens, row_floats, num_slots, s);
        case kKvBf16:
            return launch_write_kv_as<__nv_bfloat16>(k_cache, v_cache, k, v, slot_mapping, tokens, row_floats,
                                                     num_slots, s);
        default:
            return cudaErrorInvalidValue;
    }
}

}  // namespace lathe
