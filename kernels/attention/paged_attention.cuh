// Paged attention over a ragged batch (decode tokens and prefill chunks alike), GQA-aware.
//
// Algorithm: one 128-thread block per (new token, KV head). The block stages the query rows of
// the KV head's `group = heads / kv_heads` query heads in shared memory; each of its 4 warps
// walks every 4th cached position of the token's causal window (0..positions[t]) through the
// block table, loads the K row once (lane d holds dims d, d+32, ...) and scores it against all
// the group's queries, keeping a flash-style online softmax (running max m, sum l, output acc)
// per query head in registers; V is loaded once and accumulated the same way. The 4 warps'
// states are merged through shared memory at the end. So each KV head's blocks are read once
// for all its query heads, never once per query head.
// K/V are read in the pools' element type T (f32, f16 or bf16; kv_dtype.cuh) and widened to f32
// in registers: all arithmetic is f32 whatever the storage.
// Roofline (decode, context L): bytes = 2 * L * kv_heads * head_dim * sizeof(T) (K and V) per
// token; FLOPs = 4 * L * heads * head_dim: ~group / (2 sizeof(T)) FLOP/B, bandwidth bound.
// Split-KV (flash-decoding): when (tokens x KV heads) blocks cannot fill the GPU, each window
// is cut into partitions of kAttentionPartition positions, one block each (grid.z); blocks write
// their partial (max, sum, unnormalized output) and a second kernel merges the partitions.
// Variants:
//   1. block per (token, KV head), 4 warps split positions, group chunks of 8.
//   2. + split-KV across grid.z for few long sequences.
//   3. + templated on the K/V element type: f16/bf16 pools (this file). Lane d still reads
//      dims d, d+32, ...: 64-byte warp loads for 16-bit pools, unmeasured (no GPU when written).
//   (next: 4-byte (half2) K/V loads for 16-bit pools. Long prefill chunks have a tensor-core
//   kernel of their own, flash_prefill.cuh, behind LATHE_CUDA_FLASH_PREFILL.)
#pragma once

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kv_dtype.cuh"

namespace lathe {

constexpr int kAttentionWarps = 4;
constexpr int kAttentionHeadChunk = 8;  // query heads scored per pass over K/V
constexpr int kAttentionPartition = 256; // fewest positions per split-KV partition
constexpr int kAttentionMaxSplits = 64;

struct PagedAttentionArgs {
    float* out;                       // [tokens, heads * head_dim]
    const float* q;                   // [tokens, heads * head_dim]
    const void* k_cache;              // [num_blocks * block_size, kv_heads * head_dim] of the pool type T
    const void* v_cache;              // same
    const int32_t* positions;         // [tokens]
    const int32_t* seq_start;         // [seqs + 1]
    const int32_t* block_table_start; // [seqs + 1]
    const int32_t* block_table;       // [block_table_start[seqs]]
    int64_t tokens, seqs, heads, kv_heads, head_dim, block_size, num_blocks;
    float scale;
    int64_t splits;                   // partitions per window (grid.z); 1 = no split
    int64_t partition;                // positions per partition: splits * partition >= every window
    float* partial;                   // [tokens, heads, splits, head_dim + 2] when splits > 1:
                                      // unnormalized output, then the partition's max and sum
};

// DIMS_PER_LANE = ceil(head_dim / 32), one of 1, 2, 4, 8 (head_dim up to 256); T the pools' element type.
template <int DIMS_PER_LANE, typename T>
__global__ void __launch_bounds__(kAttentionWarps * 32) paged_attention_kernel(PagedAttentionArgs a) {
    extern __shared__ float shared[];
    const T* __restrict__ k_cache = static_cast<const T*>(a.k_cache);
    const T* __restrict__ v_cache = static_cast<const T*>(a.v_cache);
    const int64_t t = blockIdx.x;
    const int64_t kv_head = blockIdx.y;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int64_t group = a.heads / a.kv_heads;
    const int64_t head_dim = a.head_dim;
    const int64_t q_row = a.heads * head_dim;
    const int64_t kv_row = a.kv_heads * head_dim;

    // The token's sequence: the last s with seq_start[s] <= t (binary search over B+1 offsets).
    int64_t lo = 0, hi = a.seqs - 1;
    while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (a.seq_start[mid] <= t) lo = mid; else hi = mid - 1;
    }
    const int64_t seq = lo;
    const int64_t context = static_cast<int64_t>(a.positions[t]) + 1;
    const int64_t table_begin = a.block_table_start[seq];
    const int64_t table_blocks = a.block_table_start[seq + 1] - table_begin;
    const bool window_fits = context >= 1 && (context - 1) / a.block_size < table_blocks;
    // This block's share of the window: all of it, or partition blockIdx.z of it.
    const int64_t split = blockIdx.z;
    const int64_t pos_begin = a.splits > 1 ? split * a.partition : 0;
    const int64_t pos_end = a.splits > 1 ? min(context, pos_begin + a.partition) : context;
    // A window longer than the partitions cover (a wrong max_context) poisons the output.
    const bool covered = a.splits == 1 || a.splits * a.partition >= context;

    float* q_shared = shared;                                         // [chunk, head_dim]
    float* merge = shared + kAttentionHeadChunk * head_dim;           // [warps, chunk, head_dim + 2]

    for (int64_t h0 = 0; h0 < group; h0 += kAttentionHeadChunk) {
        const int chunk = static_cast<int>(group - h0 < kAttentionHeadChunk ? group - h0 : kAttentionHeadChunk);
        __syncthreads();
        for (int64_t i = threadIdx.x; i < chunk * head_dim; i += blockDim.x) {
            const int64_t h = kv_head * group + h0 + i / head_dim;
            q_shared[i] = a.q[t * q_row + h * head_dim + i % head_dim] * a.scale;
        }
        __syncthreads();

        float m[kAttentionHeadChunk], l[kAttentionHeadChunk], acc[kAttentionHeadChunk][DIMS_PER_LANE];
#pragma unroll
        for (int h = 0; h < kAttentionHeadChunk; h++) {
            m[h] = -INFINITY;
            l[h] = 0.0f;
#pragma unroll
            for (int j = 0; j < DIMS_PER_LANE; j++) acc[h][j] = 0.0f;
        }
        bool bad_block = !window_fits || !covered;
        for (int64_t pos = pos_begin + warp; window_fits && pos < pos_end; pos += kAttentionWarps) {
            const int64_t block = a.block_table[table_begin + pos / a.block_size];
            if (block < 0 || block >= a.num_blocks) {
                bad_block = true;
                break;
            }
            const int64_t base = (block * a.block_size + pos % a.block_size) * kv_row + kv_head * head_dim;
            float k[DIMS_PER_LANE], v[DIMS_PER_LANE];
#pragma unroll
            for (int j = 0; j < DIMS_PER_LANE; j++) {
                const int64_t d = lane + 32 * j;
                k[j] = d < head_dim ? kv_widen(k_cache[base + d]) : 0.0f;
                v[j] = d < head_dim ? kv_widen(v_cache[base + d]) : 0.0f;
            }
#pragma unroll
            for (int h = 0; h < kAttentionHeadChunk; h++) {
                if (h < chunk) {
                    float s = 0.0f;
#pragma unroll
                    for (int j = 0; j < DIMS_PER_LANE; j++) {
                        const int64_t d = lane + 32 * j;
                        if (d < head_dim) s = fmaf(q_shared[h * head_dim + d], k[j], s);
                    }
#pragma unroll
                    for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
                    const float m_new = fmaxf(m[h], s);
                    const float correction = expf(m[h] - m_new);  // 0 on the first position
                    const float p = expf(s - m_new);
                    l[h] = l[h] * correction + p;
#pragma unroll
                    for (int j = 0; j < DIMS_PER_LANE; j++) acc[h][j] = fmaf(p, v[j], acc[h][j] * correction);
                    m[h] = m_new;
                }
            }
        }
        // bad_block is the same on every lane of a warp (all lanes read the same table entry).
        const int stride = static_cast<int>(head_dim + 2);
#pragma unroll
        for (int h = 0; h < kAttentionHeadChunk; h++) {
            if (h < chunk) {
                float* slot = merge + (warp * kAttentionHeadChunk + h) * stride;
#pragma unroll
                for (int j = 0; j < DIMS_PER_LANE; j++) {
                    const int64_t d = lane + 32 * j;
                    if (d < head_dim) slot[d] = acc[h][j];
                }
                if (lane == 0) {
                    slot[head_dim] = m[h];
                    slot[head_dim + 1] = bad_block ? __int_as_float(0x7fc00000) : l[h];
                }
            }
        }
        __syncthreads();
        // Merge the warps: out = sum_w e^(m_w - M) acc_w / sum_w e^(m_w - M) l_w.
        for (int64_t i = threadIdx.x; i < chunk * head_dim; i += blockDim.x) {
            const int h = static_cast<int>(i / head_dim);
            const int64_t d = i % head_dim;
            float global_max = -INFINITY;
            for (int w = 0; w < kAttentionWarps; w++)
                global_max = fmaxf(global_max, merge[(w * kAttentionHeadChunk + h) * stride + head_dim]);
            float numerator = 0.0f, denominator = 0.0f;
            for (int w = 0; w < kAttentionWarps; w++) {
                const float* slot = merge + (w * kAttentionHeadChunk + h) * stride;
                const float mw = slot[head_dim];
                // A warp that saw no position has m = -inf and contributes nothing.
                const float weight = mw == -INFINITY ? 0.0f : expf(mw - global_max);
                numerator = fmaf(weight, slot[d], numerator);
                denominator = fmaf(weight, slot[head_dim + 1], denominator);
                if (slot[head_dim + 1] != slot[head_dim + 1]) denominator = __int_as_float(0x7fc00000);
            }
            const int64_t head = kv_head * group + h0 + h;
            if (a.splits == 1) {
                a.out[t * q_row + head * head_dim + d] = numerator / denominator;
            } else {
                float* part = a.partial + ((t * a.heads + head) * a.splits + split) * (head_dim + 2);
                part[d] = numerator;
                if (d == 0) {
                    part[head_dim] = global_max;  // -inf when the partition lies past the window
                    part[head_dim + 1] = denominator;
                }
            }
        }
    }
}

// Merges the partitions: out = sum_z e^(m_z - M) o_z / sum_z e^(m_z - M) l_z. One thread per
// output element.
__global__ void paged_attention_merge_kernel(PagedAttentionArgs a) {
    const int64_t total = a.tokens * a.heads * a.head_dim;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t d = i % a.head_dim;
        const int64_t row = i / a.head_dim;  // t * heads + head
        const float* parts = a.partial + row * a.splits * (a.head_dim + 2);
        float global_max = -INFINITY;
        for (int64_t z = 0; z < a.splits; z++) global_max = fmaxf(global_max, parts[z * (a.head_dim + 2) + a.head_dim]);
        float numerator = 0.0f, denominator = 0.0f;
        for (int64_t z = 0; z < a.splits; z++) {
            const float* part = parts + z * (a.head_dim + 2);
            const float mz = part[a.head_dim];
            const float lz = part[a.head_dim + 1];
            if (lz != lz) { denominator = __int_as_float(0x7fc00000); break; }  // a bad block table
            if (mz == -INFINITY) continue;
            const float w = expf(mz - global_max);
            numerator = fmaf(w, part[d], numerator);
            denominator = fmaf(w, lz, denominator);
        }
        a.out[i] = numerator / denominator;
    }
}

// Partitions per window for a batch whose longest window is max_context, on sms multiprocessors:
// split only when the unsplit grid would leave most of the GPU idle, into partitions of at least
// kAttentionPartition positions. The partition length is then ceil(max_context / splits).
inline int64_t paged_attention_splits(int64_t tokens, int64_t kv_heads, int64_t max_context, int sms) {
    const int64_t blocks = tokens * kv_heads;
    const int64_t most = max_context / kAttentionPartition;  // partitions of >= kAttentionPartition
    if (most <= 1 || blocks >= 2 * static_cast<int64_t>(sms)) return 1;
    int64_t wanted = (2 * static_cast<int64_t>(sms) + blocks - 1) / blocks;
    if (wanted > most) wanted = most;
    if (wanted > kAttentionMaxSplits) wanted = kAttentionMaxSplits;
    return wanted;
}

inline size_t paged_attention_shared_bytes(int64_t head_dim) {
    return sizeof(float) * (kAttentionHeadChunk * head_dim + kAttentionWarps * kAttentionHeadChunk * (head_dim + 2));
}

template <typename T>
inline cudaError_t launch_paged_attention_as(const PagedAttentionArgs& a, cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>(a.tokens), static_cast<unsigned>(a.kv_heads), static_cast<unsigned>(a.splits));
    const dim3 block(kAttentionWarps * 32);
    const size_t shared = paged_attention_shared_bytes(a.head_dim);
    // NOTE: head_dim 256 needs ~41 KB of shared memory, under the 48 KB default: no opt-in needed.
    if (a.head_dim <= 32) paged_attention_kernel<1, T><<<grid, block, shared, s>>>(a);
    else if (a.head_dim <= 64) paged_attention_kernel<2, T><<<grid, block, shared, s>>>(a);
    else if (a.head_dim <= 128) paged_attention_kernel<4, T><<<grid, block, shared, s>>>(a);
    else if (a.head_dim <= 256) paged_attention_kernel<8, T><<<grid, block, shared, s>>>(a);
    else return cudaErrorInvalidValue;
    return cudaSuccess;
}

// a.splits and a.partial must be set (splits == 1: partial unused); kv_dtype is kKvF32, kKvF16
// or kKvBf16 (the entry point has checked it). The merge kernel reads only f32 partials.
inline cudaError_t launch_paged_attention(int32_t kv_dtype, const PagedAttentionArgs& a, cudaStream_t s) {
    cudaError_t err = cudaErrorInvalidValue;
    switch (kv_dtype) {
        case kKvF32: err = launch_paged_attention_as<float>(a, s); break;
        case kKvF16: err = launch_paged_attention_as<__half>(a, s); break;
        case kKvBf16: err = launch_paged_attention_as<__nv_bfloat16>(a, s); break;
        default: break;
    }
    if (err != cudaSuccess) return err;
    err = cudaGetLastError();
    if (err != cudaSuccess || a.splits == 1) return err;
    const int64_t total = a.tokens * a.heads * a.head_dim;
    int64_t blocks = (total + 255) / 256;
    if (blocks > 65535 * 8) blocks = 65535 * 8;
    paged_attention_merge_kernel<<<static_cast<unsigned>(blocks), 256, 0, s>>>(a);
    return cudaGetLastError();
}

}  // namespace lathe
