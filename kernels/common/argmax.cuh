// Greedy sampling: out[r] = argmax_j x[r, j], the first index on ties, NaN never chosen (a row
// of NaNs gives 0).
//
// Algorithm: the row is cut into `parts` slices, one block each (grid parts x rows); each thread
// keeps its best (value, index) over a strided part of its slice, then a warp-shuffle and a
// shared-memory round pick the block's best. With one part the block writes the answer; with
// more it writes (value, index) to a workspace and a second kernel picks each row's best part.
// Roofline: reads the row once (4 bytes per logit); a 128k vocabulary is 0.5 MB, ~0.2 us of
// DRAM time on an H100, so what matters is having enough loads in flight.
// Variants:
//   1. one block per row: 138 us for one row of 128256 logits, copy to host included
//      (bench/results/gpu-20261122-h100): one block has too few loads in flight.
//   2. a row split across blocks when there are fewer rows than SMs (this file).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

namespace lathe {

constexpr int kArgmaxThreads = 256;
constexpr int kArgmaxSlice = 8192;  // logits per block when a row is split
constexpr int kArgmaxMaxParts = 64;

// True when (v, i) should win over (best, best_index): larger, or equal with a smaller index.
__device__ __forceinline__ bool argmax_better(float v, int64_t i, float best, int64_t best_index) {
    if (v != v) return false;  // NaN
    if (best != best) return true;
    return v > best || (v == best && i < best_index);
}

// The warp's best of every lane's (best, best_index), in every lane.
__device__ __forceinline__ void argmax_warp_reduce(float& best, int64_t& best_index) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, offset);
        const int64_t i = __shfl_xor_sync(0xffffffffu, best_index, offset);
        if (argmax_better(v, i, best, best_index)) {
            best = v;
            best_index = i;
        }
    }
}

// The block's best of every thread's (best, best_index); the result is valid in thread 0.
__device__ __forceinline__ void argmax_block_reduce(float& best, int64_t& best_index) {
    __shared__ float best_values[32];
    __shared__ int64_t best_indices[32];
    argmax_warp_reduce(best, best_index);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    if (lane == 0) {
        best_values[warp] = best;
        best_indices[warp] = best_index;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < blockDim.x / 32; w++) {
            if (argmax_better(best_values[w], best_indices[w], best, best_index)) {
                best = best_values[w];
                best_index = best_indices[w];
            }
        }
    }
}

// Block b is part b % parts of row b / parts: columns [part * span, min(cols, (part + 1) * span)).
// parts == 1: out[row] is the answer; else part_values / part_indices [rows, parts] get the slice's best.
__global__ void argmax_kernel(int32_t* __restrict__ out, float* __restrict__ part_values,
                              int32_t* __restrict__ part_indices, const float* __restrict__ x, int64_t cols,
                              int parts, int64_t span) {
    const int64_t row = blockIdx.x / parts;
    const int part = static_cast<int>(blockIdx.x % parts);
    const float* values = x + row * cols;
    const int64_t begin = part * span;
    const int64_t end = begin + span < cols ? begin + span : cols;
    float best = __int_as_float(0x7fc00000);
    int64_t best_index = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float v = __ldg(values + i);
        if (argmax_better(v, i, best, best_index)) {
            best = v;
            best_index = i;
        }
    }
    argmax_block_reduce(best, best_index);
    if (threadIdx.x != 0) return;
    if (parts == 1) {
        out[row] = static_cast<int32_t>(best_index);
    } else {
        part_values[row * parts + part] = best;
        part_indices[row * parts + part] = static_cast<int32_t>(best_index);
    }
}

// One warp per row: the best of its `parts` slices (a NaN slice best never wins).
__global__ void argmax_parts_kernel(int32_t* __restrict__ out, const float* __restrict__ part_values,
                                    const int32_t* __restrict__ part_indices, int parts) {
    const int64_t row = blockIdx.x;
    float best = __int_as_float(0x7fc00000);
    int64_t best_index = 0;
    for (int p = threadIdx.x; p < parts; p += 32) {
        const float v = part_values[row * parts + p];
        const int64_t i = part_indices[row * parts + p];
        if (argmax_better(v, i, best, best_index)) {
            best = v;
            best_index = i;
        }
    }
    argmax_warp_reduce(best, best_index);
    if (threadIdx.x == 0) out[row] = static_cast<int32_t>(best_index);
}

// Slices per row: enough blocks to cover the SMs when rows are few, each at least kArgmaxSlice long.
inline int argmax_parts(int64_t rows, int64_t cols, int multiprocessors) {
    if (rows >= multiprocessors) return 1;
    int64_t parts = (cols + kArgmaxSlice - 1) / kArgmaxSlice;
    if (parts > kArgmaxMaxParts) parts = kArgmaxMaxParts;
    return parts > 1 ? static_cast<int>(parts) : 1;
}

// Bytes of workspace launch_argmax needs: a float and an int32 per (row, part).
inline size_t argmax_workspace_bytes(int64_t rows, int64_t cols, int multiprocessors) {
    const int parts = argmax_parts(rows, cols, multiprocessors);
    return parts > 1 ? static_cast<size_t>(rows) * parts * (sizeof(float) + sizeof(int32_t)) : 0;
}

// rows * parts < 2^31 blocks (parts > 1 only for fewer rows than SMs); workspace of argmax_workspace_bytes(...).
inline cudaError_t launch_argmax(int32_t* out, const float* x, int64_t rows, int64_t cols, void* workspace,
                                 int multiprocessors, cudaStream_t s) {
    const int parts = argmax_parts(rows, cols, multiprocessors);
    const int64_t span = (cols + parts - 1) / parts;
    float* part_values = parts > 1 ? static_cast<float*>(workspace) : nullptr;
    int32_t* part_indices = parts > 1 ? reinterpret_cast<int32_t*>(part_values + rows * parts) : nullptr;
    argmax_kernel<<<static_cast<unsigned>(rows * parts), kArgmaxThreads, 0, s>>>(out, part_values, part_indices, x,
                                                                                 cols, parts, span);
    if (parts > 1) argmax_parts_kernel<<<static_cast<unsigned>(rows), 32, 0, s>>>(out, part_values, part_indices, parts);
    return cudaGetLastError();
}

}  // namespace lathe
