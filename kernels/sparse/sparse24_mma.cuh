// 2:4 structured-sparse FP16 GEMM on the sparse tensor cores (mma.sp), for 8+ tokens:
// out [tokens, rows] = x [tokens, cols] . W^T with W 2:4 sparse, the sparse operand A of
//   mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32  (A: 16 weight rows x 32 columns, stored
//   as 16 x 16 kept halves + 2-bit column indices; B: 32 columns x 8 tokens; f32 accumulate).
//
// Layout (java/cuda Sparse24MmaLayout reorders the GEMV layout of sparse24_gemv.cuh into it once,
// at upload): rows padded to a multiple of 16, for each 16-row tile and 32-column chunk:
//   fragments: uint32 [row_tiles, cols/32, 32 lanes, 4]: lane (g = lane/4, t = lane%4) holds the
//              A fragment of mma.m16n8k16 over the tile's 16 x 16 kept halves (PTX: for 16-bit
//              types the sparse A fragment is the dense m16n8k16 one over the compressed matrix):
//              {row g, kept 2t..2t+1}, {row g+8, kept 2t..2t+1}, {row g, kept 2t+8..2t+9},
//              {row g+8, kept 2t+8..2t+9}, low half first. One 16-byte load per lane, 512
//              contiguous bytes per warp.
//   meta:      uint32 [row_tiles, cols/32, 16]: word 2g+t' (t' = 0, 1) is the metadata register of
//              the lanes with threadID_in_group t' (sparsity selector 0): bits 0-15 the 8 two-bit
//              indices of row g over columns 16t'..16t'+15, bits 16-31 those of row g+8.
// Algorithm: a block of 4 warps owns 64 weight rows (a 16-row tile per warp) and BN tokens. Per
// k-step of 64 columns the block converts the x tile [BN, 64] to f16 in shared memory; each warp
// loads its two chunks' fragments and metadata straight from global memory (issued before the
// barrier, so they overlap the x conversion), reads B with ldmatrix and runs 2 x BN/8 mma.sp.
// Split-K over grid.z with the workspace and split order of quant/mma_gemm.cuh (deterministic).
// Roofline: weights 2 bytes per kept value + 1/8 byte metadata per column = 56% of dense FP16's
// bytes; tensor work is half the dense GEMM's (the sparse units skip the zeros).
// Variants: 1. this file (global-memory A fragments, x through shared memory, no cp.async).
//   (next: cp.async double buffering of the fragments; BF16 is the same code with the .bf16 form.)
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "../quant/mma_gemm.cuh"

namespace lathe {

constexpr int kSpRows = 64;       // weight rows per block: 4 warps x 16
constexpr int kSpK = 64;          // columns per k-step (two 32-column chunks)
constexpr int kSpThreads = 128;
constexpr int kSpPitch = kSpK + 8; // halves per shared x row: 144 bytes, ldmatrix conflict-free

// d [16 rows x 8 tokens] += A [16 x 32, 2:4 sparse] . B [32 x 8].
__device__ __forceinline__ void mma_sp_16832(float d[4], const uint4& a, uint32_t b0, uint32_t b1, uint32_t b2,
                                             uint32_t b3, uint32_t meta) {
    asm volatile(
        "mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9, %10, %11}, {%0, %1, %2, %3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1), "r"(b2), "r"(b3), "r"(meta));
}

// out: [tokens, rows], or with splits the workspace [gridDim.z, tokens, rows].
template <int BN>
__global__ void __launch_bounds__(kSpThreads) sparse24_mma_kernel(const uint4* __restrict__ fragments,
                                                                  const uint32_t* __restrict__ meta,
                                                                  int64_t rows, int64_t cols,
                                                                  const float* __restrict__ x, int64_t tokens,
                                                                  int64_t steps_per_split, float* __restrict__ out) {
    constexpr int kTokenTiles = BN / 8;
    constexpr int kXVectors = BN * kSpK / 4 / kSpThreads;  // float4 of x per thread per step
    __shared__ __align__(16) __half x_tile[BN * kSpPitch];

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int64_t chunks = cols / 32;
    const int64_t row_tile = blockIdx.x * 4LL + warp;
    const int64_t row_tiles = (rows + 15) / 16;
    const bool tile_live = row_tile < row_tiles;
    const int64_t token0 = blockIdx.y * (int64_t)BN;

    float acc[kTokenTiles][4];
#pragma unroll
    for (int n = 0; n < kTokenTiles; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) acc[n][i] = 0.0f;

    const int64_t first_step = blockIdx.z * steps_per_split;
    const int64_t end_step = min(cols / kSpK, first_step + steps_per_split);
    out += blockIdx.z * tokens * rows;
    const int meta_lane = (lane >> 2) * 2 + (lane & 1);  // lanes with t = 2, 3 repeat t = 0, 1 (ignored)

    for (int64_t step = first_step; step < end_step; step++) {
        // This warp's two chunks of A (kept halves + metadata), loaded before the barrier.
        uint4 a[2] = {make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
        uint32_t e[2] = {0x44444444u, 0x44444444u};  // any valid metadata for a dead tile
        if (tile_live) {
#pragma unroll
            for (int c = 0; c < 2; c++) {
                const int64_t chunk = step * 2 + c;
                a[c] = __ldg(fragments + (row_tile * chunks + chunk) * 32 + lane);
                e[c] = __ldg(meta + (row_tile * chunks + chunk) * 16 + meta_lane);
            }
        }
        float4 xv[kXVectors];
#pragma unroll
        for (int j = 0; j < kXVectors; j++) {
            const int v = threadIdx.x + kSpThreads * j;
            const int64_t token = token0 + v / (kSpK / 4);
            xv[j] = token < tokens
                        ? __ldg(reinterpret_cast<const float4*>(x + token * cols + step * kSpK + 4 * (v % (kSpK / 4))))
                        : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        __syncthreads();  // the previous step's ldmatrix reads are done
#pragma unroll
        for (int j = 0; j < kXVectors; j++) {
            const int v = threadIdx.x + kSpThreads * j;
            *reinterpret_cast<uint2*>(x_tile + (v / (kSpK / 4)) * kSpPitch + 4 * (v % (kSpK / 4))) =
                make_uint2(pack_half2(xv[j].x, xv[j].y), pack_half2(xv[j].z, xv[j].w));
        }
        __syncthreads();
#pragma unroll
        for (int c = 0; c < 2; c++) {
#pragma unroll
            for (int n = 0; n < kTokenTiles; n++) {
                // B fragment of m16n8k32: b_j = x[token g, column 8j + 2t .. +1]; ldmatrix's four
                // 8x8 matrices are (tokens 0-7) x (columns 0-7, 8-15, 16-23, 24-31) of the chunk.
                uint32_t b[4];
                ldmatrix_x4(b, x_tile + (n * 8 + (lane & 7)) * kSpPitch + c * 32 + (lane >> 3) * 8);
                mma_sp_16832(acc[n], a[c], b[0], b[1], b[2], b[3], e[c]);
            }
        }
    }

    // D fragment: d0, d1 at (row g, tokens 2t, 2t+1); d2, d3 at row g + 8.
    if (!tile_live) return;
#pragma unroll
    for (int n = 0; n < kTokenTiles; n++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int64_t row = row_tile * 16 + (lane >> 2) + (i >= 2 ? 8 : 0);
            const int64_t token = token0 + n * 8 + 2 * (lane & 3) + (i & 1);
            if (token < tokens && row < rows) out[token * rows + row] = acc[n][i];
        }
    }
}

inline int sparse24_mma_tile(int64_t tokens) { return tokens <= 16 ? 16 : tokens <= 32 ? 32 : 64; }

inline int sparse24_mma_splits(int64_t rows, int64_t cols, int64_t tokens, int multiprocessors) {
    const int bn = sparse24_mma_tile(tokens);
    const int64_t blocks = ((rows + kSpRows - 1) / kSpRows) * ((tokens + bn - 1) / bn);
    return mma_splits(blocks, cols, multiprocessors);  // kSpK == kMmaK: the same k-steps
}

// Bytes of split-K workspace launch_sparse24_mma needs (0: none).
inline size_t sparse24_mma_workspace_bytes(int64_t rows, int64_t cols, int64_t tokens, int multiprocessors) {
    const int splits = sparse24_mma_splits(rows, cols, tokens, multiprocessors);
    return splits > 1 ? sizeof(float) * static_cast<size_t>(splits) * tokens * rows : 0;
}

template <int BN>
inline cudaError_t launch_sparse24_mma_bn(const uint4* fragments, const uint32_t* meta, int64_t rows, int64_t cols,
                                          const float* x, int64_t tokens, float* out, float* workspace,
                                          int multiprocessors, cudaStream_t s) {
    const int64_t steps = cols / kSpK;
    int splits = sparse24_mma_splits(rows, cols, tokens, multiprocessors);
    const int64_t per_split = (steps + splits - 1) / splits;
    splits = static_cast<int>((steps + per_split - 1) / per_split);
    const dim3 grid(static_cast<unsigned>((rows + kSpRows - 1) / kSpRows), static_cast<unsigned>((tokens + BN - 1) / BN),
                    static_cast<unsigned>(splits));
    sparse24_mma_kernel<BN><<<grid, kSpThreads, 0, s>>>(fragments, meta, rows, cols, x, tokens, per_split,
                                                         splits > 1 ? workspace : out);
    if (splits > 1) {
        sum_splits(workspace, splits, tokens, rows, out, multiprocessors, s);
    }
    return cudaGetLastError();
}

// Needs cols % kSpK == 0, x 16-byte aligned, 1 <= tokens with ceil(tokens / 64) <= 65535, and
// `workspace` of sparse24_mma_workspace_bytes(rows, cols, tokens, multiprocessors) bytes.
inline cudaError_t launch_sparse24_mma(const uint32_t* fragments, const uint32_t* meta, int64_t rows, int64_t cols,
                                       const float* x, int64_t tokens, float* out, float* workspace,
                                       int multiprocessors, cudaStream_t s) {
    const uint4* f = reinterpret_cast<const uint4*>(fragments);
    switch (sparse24_mma_tile(tokens)) {
        case 16: return launch_sparse24_mma_bn<16>(f, meta, rows, cols, x, tokens, out, workspace, multiprocessors, s);
        case 32: return launch_sparse24_mma_bn<32>(f, meta, rows, cols, x, tokens, out, workspace, multiprocessors, s);
        default: return launch_sparse24_mma_bn<64>(f, meta, rows, cols, x, tokens, out, workspace, multiprocessors, s);
    }
}

}  // namespace lathe
