// Flash prefill: causal paged attention for prefill chunks on the tensor cores
// (FlashAttention-2-style tiles), GQA-aware, reading the cached prefix through the block table.
//
// Algorithm: one 128-thread block per (query tile, KV head, sequence). A tile is kFlashRows = 64
// query rows, each row a (new token, query head of the KV head's group) pair, token-major: the
// tile holds 64 / group consecutive new tokens of one sequence with all `group` heads of one KV
// head, so K/V are read once per tile for all its heads. The 4 warps own 16 rows each (FA2: no
// reduction across warps). Per K/V tile of BN positions (0 .. the tile's last position, through
// the block table) the block converts K and V to f16 in shared memory, then each warp
//   1. S [16, BN] = Q K^T with mma.sync m16n8k16 (f16 operands, f32 accumulate), Q's fragments
//      held in registers for the whole walk, K's read with ldmatrix;
//   2. scales S by scale * log2(e), masks key > row position (only on diagonal tiles: those
//      reaching past the tile's first position), updates the running max m and sum l of its rows
//      and rescales O once per K/V tile;
//   3. O [16, head_dim] += P V, P rounded to f16 straight from S's accumulator fragments, V's
//      fragments read with ldmatrix.trans.
// O is divided by l once at the end. Positions are read from `positions`, not assumed.
//
// Precision: Q, K, V and P enter the tensor cores as f16 (nearest even), products and sums are
// f32. With u = 2^-11 (f16 unit roundoff) and |q|, |k| the row's vectors, each score is off by at
// most 2u * scale * sum_d |q_d k_d| (f32 pools; f16 pools are exact operands, bf16 pools also are
// while |x| lies in f16's normal range [6.1e-5, 65504]: bf16's 8-bit significand fits in f16's
// 11), each p by a relative u, each f32-pool V value by a relative u; so each output element is
// off by at most about (2 (2u S + u) + u) max|v| with S the largest scaled sum_d |q_d k_d|
// (CudaParityTest.flashPrefill checks exactly that bound). NOTE: f16 rather than bf16 operands
// for bf16 pools: 3 more significand bits for Q and P; the cost is that |values| over 65504
// would become inf, the same limit mma_gemm.cuh accepts for activations.
//
// Roofline, one chunk of n new tokens after p0 cached ones (L = p0 + n): FLOPs = 4 * heads *
// head_dim * sum_t (pos_t + 1) ~ 4 heads head_dim n (p0 + n/2); K/V bytes = 2 * kv_heads *
// head_dim * sizeof(T) per position per tile, ~ (n group / 64) times the window instead of n
// times (paged_attention.cuh reads it once per token): 2 * 64 / sizeof(T) FLOP per K/V byte, so
// from L2 the kernel is bound by mma.sync issue, not by DRAM.
// Variants:
//   1. (this file) single-buffered K/V tiles (BN = 64 for head_dim 64, 32 for 128, so shared
//      memory stays under the 48 KB default), no split across the window, head_dim 64 and 128
//      only (anything else stays on paged_attention.cuh). Written without a GPU: unmeasured;
//      its fragment arithmetic is emulated on the CPU (java/cuda FlashPrefillEmulationTest).
//      Prediction to check first (KernelBenchmark, T=2048 from position 0, 16/4 heads, d=64:
//      8.6 GFLOP): the paged kernel's f32 FMAs at ~15 TFLOP/s would take ~0.6 ms; this kernel at
//      2 blocks/SM (165-186 registers) with single-buffered tiles maybe 100 TFLOP/s of mma.sync,
//      ~0.1 ms. Far less than that speed-up means the K/V tile loads are not overlapped with the
//      mma (the next variant's cp.async double buffer).
//   (next: cp.async double-buffered K/V, 128-row tiles, wgmma on sm_90a.)
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kv_dtype.cuh"

namespace lathe {

constexpr int kFlashRows = 64;     // query rows per block: 4 warps x 16
constexpr int kFlashThreads = 128;
constexpr int kFlashMaxGroup = kFlashRows;  // query heads per KV head the tile can hold

struct FlashPrefillArgs {
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
};

// New tokens per tile: the rows hold whole tokens (all `group` heads of each).
inline int64_t flash_prefill_tile_tokens(int64_t group) { return kFlashRows / group; }

// Query tiles per sequence (grid.x) for the batch's longest chunk of new tokens.
inline int64_t flash_prefill_tiles(int64_t max_seq_tokens, int64_t group) {
    const int64_t per_tile = flash_prefill_tile_tokens(group);
    return (max_seq_tokens + per_tile - 1) / per_tile;
}

// Whether the kernel has an instantiation for head_dim (others run paged_attention.cuh).
inline bool flash_prefill_supports(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

__device__ __forceinline__ uint32_t flash_shared_address(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void flash_ldmatrix_x4(uint32_t r[4], const __half* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(flash_shared_address(p)));
}

__device__ __forceinline__ void flash_ldmatrix_x4_trans(uint32_t r[4], const __half* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(flash_shared_address(p)));
}

// c [16x8] += a [16x16] . b [16x8], f16 operands, f32 accumulators (PTX fragment layouts).
__device__ __forceinline__ void flash_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t flash_pack(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// 8 consecutive pool values (16-byte aligned for 16-bit pools, 32 for f32) as 8 halves.
__device__ __forceinline__ uint4 flash_load8(const float* p) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    return make_uint4(flash_pack(a.x, a.y), flash_pack(a.z, a.w), flash_pack(b.x, b.y), flash_pack(b.z, b.w));
}
__device__ __forceinline__ uint4 flash_load8(const __half* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
__device__ __forceinline__ uint4 flash_load8(const __nv_bfloat16* p) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
    uint32_t h[4];
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = flash_pack(__uint_as_float(w[i] << 16), __uint_as_float(w[i] & 0xffff0000u));
    return make_uint4(h[0], h[1], h[2], h[3]);
}

// HEAD_DIM 64 or 128; BN K/V positions per tile; T the pools' element type.
template <int HEAD_DIM, int BN, typename T>
__global__ void __launch_bounds__(kFlashThreads) flash_prefill_kernel(FlashPrefillArgs a) {
    constexpr int kPitch = HEAD_DIM + 8;     // halves per shared row: an odd number of 16 bytes, so
                                             // ldmatrix's 8 row addresses hit distinct banks
    constexpr int kDimTiles = HEAD_DIM / 8;  // n-tiles of O
    constexpr int kKeyTiles = BN / 8;        // n-tiles of S
    constexpr int kChunks = HEAD_DIM / 8;    // 8-value loads per row
    __shared__ __align__(16) __half q_tile[kFlashRows * kPitch];
    __shared__ __align__(16) __half k_tile[BN * kPitch];
    __shared__ __align__(16) __half v_tile[BN * kPitch];
    __shared__ int row_position[kFlashRows];  // -1: no row (past the chunk or the group)
    __shared__ int bad;

    const T* __restrict__ k_cache = static_cast<const T*>(a.k_cache);
    const T* __restrict__ v_cache = static_cast<const T*>(a.v_cache);
    const int64_t seq = blockIdx.z;
    const int64_t kv_head = blockIdx.y;
    const int64_t group = a.heads / a.kv_heads;
    const int64_t per_tile = kFlashRows / group;
    const int64_t seq_begin = a.seq_start[seq];
    const int64_t seq_end = a.seq_start[seq + 1];
    const int64_t tile_begin = seq_begin + blockIdx.x * per_tile;
    const int64_t q_row = a.heads * HEAD_DIM;
    const int64_t kv_row = a.kv_heads * HEAD_DIM;
    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;

    // A chunk longer than the grid covers (a wrong max_seq_tokens) poisons its uncovered rows.
    if (blockIdx.x == gridDim.x - 1) {
        const int64_t covered = seq_begin + static_cast<int64_t>(gridDim.x) * per_tile;
        for (int64_t i = covered * q_row + tid; i < seq_end * q_row; i += kFlashThreads) {
            const int64_t head = (i % q_row) / HEAD_DIM;
            if (head / group == kv_head) a.out[i] = __int_as_float(0x7fc00000);
        }
    }
    if (tile_begin >= seq_end) return;

    // Rows, their positions and Q (f16).
    if (tid < kFlashRows) {
        const int64_t token = tile_begin + tid / group;
        const bool valid = tid < per_tile * group && token < seq_end;
        row_position[tid] = valid ? a.positions[token] : -1;
    }
    if (tid == 0) bad = 0;
    for (int i = tid; i < kFlashRows * kChunks; i += kFlashThreads) {
        const int r = i / kChunks;
        const int c = i % kChunks;
        const int64_t token = tile_begin + r / group;
        uint4 packed = make_uint4(0u, 0u, 0u, 0u);
        if (r < per_tile * group && token < seq_end) {
            const int64_t head = kv_head * group + r % group;
            packed = flash_load8(a.q + token * q_row + head * HEAD_DIM + 8 * c);
        }
        *reinterpret_cast<uint4*>(q_tile + r * kPitch + 8 * c) = packed;
    }
    __syncthreads();

    int first = INT32_MAX, last = -1;  // the tile's smallest and largest position
    for (int r = 0; r < kFlashRows; r++) {
        const int p = row_position[r];
        if (p >= 0) {
            first = min(first, p);
            last = max(last, p);
        }
    }
    const int64_t table_begin = a.block_table_start[seq];
    const int64_t table_blocks = a.block_table_start[seq + 1] - table_begin;
    const bool window_fits = last / a.block_size < table_blocks;

    // Q fragments of the warp's 16 rows, for the whole walk.
    uint32_t qf[HEAD_DIM / 16][4];
#pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; kk++)
        flash_ldmatrix_x4(qf[kk], q_tile + (warp * 16 + (lane & 15)) * kPitch + kk * 16 + (lane >> 4) * 8);

    // The thread's two rows: lane / 4 and lane / 4 + 8 of the warp's 16.
    const int row_lo = warp * 16 + (lane >> 2);
    const int pos_lo = row_position[row_lo];
    const int pos_hi = row_position[row_lo + 8];
    const float scale_log2 = a.scale * 1.4426950408889634f;  // exp(x) = exp2(x log2 e)
    float m[2] = {-INFINITY, -INFINITY};
    float l[2] = {0.0f, 0.0f};
    float o[kDimTiles][4];
#pragma unroll
    for (int j = 0; j < kDimTiles; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) o[j][i] = 0.0f;

    const int64_t walk_end = window_fits ? static_cast<int64_t>(last) + 1 : 0;
    for (int64_t kv0 = 0; kv0 < walk_end; kv0 += BN) {
        __syncthreads();  // the previous tile's K/V are no longer read
        for (int i = tid; i < BN * kChunks; i += kFlashThreads) {
            const int r = i / kChunks;
            const int c = i % kChunks;
            const int64_t pos = kv0 + r;
            uint4 kp = make_uint4(0u, 0u, 0u, 0u), vp = kp;  // past the window: zeros, never NaN
            if (pos < walk_end) {
                const int64_t block = a.block_table[table_begin + pos / a.block_size];
                if (block < 0 || block >= a.num_blocks) {
                    bad = 1;
                } else {
                    const int64_t base = (block * a.block_size + pos % a.block_size) * kv_row + kv_head * HEAD_DIM + 8 * c;
                    kp = flash_load8(k_cache + base);
                    vp = flash_load8(v_cache + base);
                }
            }
            *reinterpret_cast<uint4*>(k_tile + r * kPitch + 8 * c) = kp;
            *reinterpret_cast<uint4*>(v_tile + r * kPitch + 8 * c) = vp;
        }
        __syncthreads();

        // 1. S = Q K^T.
        float s[kKeyTiles][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++)
#pragma unroll
            for (int i = 0; i < 4; i++) s[j][i] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < HEAD_DIM / 16; kk++) {
#pragma unroll
            for (int n = 0; n < BN / 16; n++) {
                // matrices (keys 0-7, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, 0-7), (keys 8-15, 8-15)
                uint32_t b[4];
                flash_ldmatrix_x4(b, k_tile + (n * 16 + (lane & 7) + ((lane >> 4) << 3)) * kPitch + kk * 16 +
                                         ((lane >> 3) & 1) * 8);
                flash_mma(s[2 * n], qf[kk], b[0], b[1]);
                flash_mma(s[2 * n + 1], qf[kk], b[2], b[3]);
            }
        }

        // 2. Scale, mask, online softmax. Fragment element i of key tile j: row lane/4 (+8 for
        // i >= 2), key kv0 + 8j + 2 (lane % 4) + (i & 1).
        const bool diagonal = kv0 + BN - 1 > first;
        float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float x = s[j][i] * scale_log2;
                if (diagonal) {
                    const int64_t key = kv0 + 8 * j + 2 * (lane & 3) + (i & 1);
                    if (key > (i < 2 ? pos_lo : pos_hi)) x = -INFINITY;
                }
                s[j][i] = x;
                tile_max[i >> 1] = fmaxf(tile_max[i >> 1], x);
            }
        }
        float correction[2], base[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
            tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
            const float m_new = fmaxf(m[h], tile_max[h]);
            // A row that has seen only masked keys keeps m = -inf: subtract 0 so nothing is NaN.
            base[h] = m_new == -INFINITY ? 0.0f : m_new;
            correction[h] = exp2f(m[h] - base[h]);
            m[h] = m_new;
            l[h] *= correction[h];
        }
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float p = exp2f(s[j][i] - base[i >> 1]);
                s[j][i] = p;
                l[i >> 1] += p;  // this thread's share of the row sum; reduced at the end
            }
        }
#pragma unroll
        for (int j = 0; j < kDimTiles; j++) {
            o[j][0] *= correction[0];
            o[j][1] *= correction[0];
            o[j][2] *= correction[1];
            o[j][3] *= correction[1];
        }

        // 3. O += P V: S's fragments of key tiles 2k, 2k+1 are P's A fragment for keys 16k..16k+15.
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t pf[4];
            pf[0] = flash_pack(s[2 * kk][0], s[2 * kk][1]);
            pf[1] = flash_pack(s[2 * kk][2], s[2 * kk][3]);
            pf[2] = flash_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pf[3] = flash_pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int n = 0; n < HEAD_DIM / 16; n++) {
                // transposed matrices (keys 0-7, dims 0-7), (keys 8-15, dims 0-7), (keys 0-7, 8-15), (keys 8-15, 8-15)
                uint32_t b[4];
                flash_ldmatrix_x4_trans(b, v_tile + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kPitch + n * 16 +
                                               (lane >> 4) * 8);
                flash_mma(o[2 * n], pf, b[0], b[1]);
                flash_mma(o[2 * n + 1], pf, b[2], b[3]);
            }
        }
    }
    __syncthreads();
    const bool poisoned = !window_fits || bad != 0;

    // O / l; O's fragment element i of dim tile j: row lane/4 (+8 for i >= 2), dim 8j + 2 (lane % 4) + (i & 1).
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = row_lo + 8 * h;
        if (row_position[r] < 0) continue;
        const int64_t token = tile_begin + r / group;
        const int64_t head = kv_head * group + r % group;
        float* dst = a.out + token * q_row + head * HEAD_DIM + 2 * (lane & 3);
        const float inv = poisoned ? __int_as_float(0x7fc00000) : 1.0f / l[h];
#pragma unroll
        for (int j = 0; j < kDimTiles; j++)
            *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][2 * h] * inv, o[j][2 * h + 1] * inv);
    }
}

template <typename T>
inline cudaError_t launch_flash_prefill_as(const FlashPrefillArgs& a, int64_t tiles, cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.kv_heads), static_cast<unsigned>(a.seqs));
    // NOTE: BN = 32 for head_dim 128 keeps Q + K + V tiles at 34 KB of static shared memory (64
    // would need 52 KB and the dynamic opt-in) and S at 16 registers beside O's 64.
    if (a.head_dim == 64) flash_prefill_kernel<64, 64, T><<<grid, kFlashThreads, 0, s>>>(a);
    else if (a.head_dim == 128) flash_prefill_kernel<128, 32, T><<<grid, kFlashThreads, 0, s>>>(a);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

// tiles = flash_prefill_tiles(longest chunk, group); kv_dtype is kKvF32, kKvF16 or kKvBf16 (the
// entry point has checked it, the head_dim, the group and the alignments).
inline cudaError_t launch_flash_prefill(int32_t kv_dtype, const FlashPrefillArgs& a, int64_t tiles, cudaStream_t s) {
    switch (kv_dtype) {
        case kKvF32: return launch_flash_prefill_as<float>(a, tiles, s);
        case kKvF16: return launch_flash_prefill_as<__half>(a, tiles, s);
        case kKvBf16: return launch_flash_prefill_as<__nv_bfloat16>(a, tiles, s);
        default: return cudaErrorInvalidValue;
    }
}

}  // namespace lathe
