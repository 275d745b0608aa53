// Tensor-core dequant GEMM (W4A16 / W8A16 / W16A16) for 8+ tokens: prefill chunks and batched
// decode. out [tokens, rows] = x [tokens, cols] . W^T, W in any layout the GEMVs read
// (quant/gemv.cuh for the ggml layouts, quant/int4_gemv.cuh for INT4 group-wise and NF4).
// Two kernels: the narrow one below for 8-32 tokens, the staged one (further down) from 33
// (F16 weights: always the staged one).
//
// Narrow: a block owns kMmaRows = 64 weight rows (output features), BM in {16, 32} tokens
// and a range of k-steps; its 4 warps each own 16 of the weight rows and all BM tokens. Per
// k-step of 64 columns (two Q8_0 / Q4_0 groups, a quarter of a K-quant block) the block
//   1. decodes its 64 x 64 weights with the GEMV's 8-weight readers (four per thread, their loads
//      issued together) and stores them as f16 in shared memory, and converts the x tile [BM, 64]
//      from f32 to f16 beside it;
//   2. each warp runs 4 x (BM/16) x 2 mma.sync.m16n8k16 (f16 in, f32 accumulate), its fragments
//      read with ldmatrix.
// Shared memory is double-buffered: the next k-step's global loads are issued before this step's
// mma and stored after it, so one barrier per step separates the two buffers.
// Split-K: with few tokens, 64-row blocks alone leave most of the chip idle (4096 rows are 64
// blocks for 132 SMs) and each block has only one k-step of loads in flight, so the first version
// ran at 6% of the bandwidth roofline at 16 tokens. The k-steps are therefore split over
// grid.z so that about four blocks run per SM; each split writes its partial sums to a
// workspace [splits, tokens, rows] and a second kernel adds them in split order (deterministic,
// unlike atomics: the same inputs always give the same bits).
//
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <algorithm>

#include "gemv.cuh"
#include "int4_gemv.cuh"

namespace lathe {

constexpr int kMmaRows = 64;        // weight rows per block: 4 warps x 16
constexpr int kMmaK = 64;           // columns per k-step; cols must be a multiple of it
constexpr int kMmaThreads = 128;
constexpr int kMmaPitch = kMmaK + 8;  // halves per shared row: 144 bytes keeps ldmatrix conflict-free
constexpr int kMmaBlocksPerSm = 4;   // split-K target
constexpr int kMmaMinStepsPerSplit = 4;
constexpr int kMmaMinTokens = 8;    // fewer tokens run the GEMV (see gemv.cuh)

// Weights from a ggml layout through gemv.cuh's readers. Lane-step c of a row is 8 weights; for
// Q4_0 they are not 8 consecutive columns (gemv_x_index says which).
template <int FORMAT>
struct GgmlTileSource {
    const void* values;
    const __half* scales;
    int64_t cols;
    __device__ __forceinline__ void bind(float*) {}
    __device__ __forceinline__ void load8(int64_t row, int64_t c, float w[8]) const {
        Gemv8<FORMAT>::load(values, scales, row, c, cols, w);
    }
    // Column of weight k of lane-step c, counted from k0, the first column of its k-step.
    __device__ __forceinline__ static int column(int64_t c, int k, int64_t k0) {
        return static_cast<int>(gemv_x_index<FORMAT>(c, k) - k0);
    }
};

// Weights from int4_gemv.cuh's nibble layout (INT4 group-wise, NF4): word c holds columns 8c .. 8c+7.
template <class Decoder>
struct NibbleTileSource {
    const uint32_t* qweight;  // [rows, cols/8]
    Decoder decoder;
    int64_t cols;
    __device__ __forceinline__ void bind(float* table) { decoder.bind(table); }
    __device__ __forceinline__ void load8(int64_t row, int64_t c, float w[8]) const {
        decoder.decode(__ldg(qweight + row * (cols / 8) + c), row, c, cols, w);
    }
    __device__ __forceinline__ static int column(int64_t c, int k, int64_t k0) {
        return static_cast<int>(8 * c + k - k0);
    }
};

__device__ __forceinline__ uint32_t shared_address(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const __half* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(p)));
}

// c [16x8] += a [16x16] . b [16x8], f16 operands, f32 accumulators (PTX fragment layouts).
__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// One k-step's weights, [ROWS, kMmaK], decoded by THREADS threads with the GEMV's 8-weight
// readers (kMmaK / 8 per row), held in registers between the load and the store to shared memory.
template <int ROWS, int THREADS>
struct WeightStage {
    static constexpr int kStepsPerRow = kMmaK / 8;
    static constexpr int kSteps = ROWS * kStepsPerRow / THREADS;  // per thread: 4 in both kernels
    static_assert(kSteps * THREADS == ROWS * kStepsPerRow, "threads must divide the tile's 8-weight steps");
    float w[kSteps][8];

    // Rows past `rows` load zeros.
    template <class Source>
    __device__ __forceinline__ void load(const Source& source, int64_t k0, int64_t row0, int64_t rows) {
#pragma unroll
        for (int j = 0; j < kSteps; j++) {
            const int s = threadIdx.x + THREADS * j;
            const int64_t row = row0 + s / kStepsPerRow;
            if (row < rows) {
                source.load8(row, k0 / 8 + s % kStepsPerRow, w[j]);
            } else {
#pragma unroll
                for (int k = 0; k < 8; k++) w[j][k] = 0.0f;
            }
        }
    }

    // b_tile: [ROWS][kMmaPitch] halves, [row][k - k0].
    template <class Source>
    __device__ __forceinline__ void store(__half* b_tile, int64_t k0) const {
#pragma unroll
        for (int j = 0; j < kSteps; j++) {
            const int s = threadIdx.x + THREADS * j;
            __half* row = b_tile + (s / kStepsPerRow) * kMmaPitch;
            const int64_t c = k0 / 8 + s % kStepsPerRow;
            // Weights 0-3 and 4-7 each cover 4 consecutive columns (Q4_0's two nibble halves sit
            // 16 columns apart; every other layout has all 8 consecutive): two 8-byte stores.
            *reinterpret_cast<uint2*>(row + Source::column(c, 0, k0)) =
                make_uint2(pack_half2(w[j][0], w[j][1]), pack_half2(w[j][2], w[j][3]));
            *reinterpret_cast<uint2*>(row + Source::column(c, 4, k0)) =
                make_uint2(pack_half2(w[j][4], w[j][5]), pack_half2(w[j][6], w[j][7]));
        }
    }
};

// One k-step's global data of one thread in the narrow kernel: weights, and x as f32 (converted
// to f16 on the store).
template <int BM>
struct MmaStage {
    static constexpr int kXVectors = BM * kMmaK / 4 / kMmaThreads;  // float4 of x: BM/8
    static constexpr int kXVectorsRounded = kXVectors > 0 ? kXVectors : 1;
    WeightStage<kMmaRows, kMmaThreads> weights;
    float4 x[kXVectorsRounded];
};

template <class Source, int BM>
__device__ __forceinline__ void mma_load_stage(const Source& source, MmaStage<BM>& stage, int64_t k0, int64_t row0,
                                               int64_t rows, int64_t cols, const float* __restrict__ x,
                                               int64_t token0, int64_t tokens) {
    const int tid = threadIdx.x;
    stage.weights.load(source, k0, row0, rows);
#pragma unroll
    for (int j = 0; j < MmaStage<BM>::kXVectors; j++) {
        constexpr int kPerToken = kMmaK / 4;  // float4 per token row
        const int v = tid + kMmaThreads * j;
        const int64_t token = token0 + v / kPerToken;
        stage.x[j] = token < tokens
                         ? __ldg(reinterpret_cast<const float4*>(x + token * cols + k0 + 4 * (v % kPerToken)))
                         : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

template <class Source, int BM>
__device__ __forceinline__ void mma_store_stage(const MmaStage<BM>& stage, __half* a_tile, __half* b_tile,
                                                int64_t k0) {
    const int tid = threadIdx.x;
    stage.weights.template store<Source>(b_tile, k0);
#pragma unroll
    for (int j = 0; j < MmaStage<BM>::kXVectors; j++) {
        constexpr int kPerToken = kMmaK / 4;
        const int v = tid + kMmaThreads * j;
        uint2 packed;
        packed.x = pack_half2(stage.x[j].x, stage.x[j].y);
        packed.y = pack_half2(stage.x[j].z, stage.x[j].w);
        *reinterpret_cast<uint2*>(a_tile + (v / kPerToken) * kMmaPitch + 4 * (v % kPerToken)) = packed;
    }
}

// out: [tokens, rows], or with splits the workspace [gridDim.z, tokens, rows] (split z at z * tokens * rows).
template <class Source, int BM>
__global__ void __launch_bounds__(kMmaThreads) mma_gemm_kernel(Source weights, int64_t rows, int64_t cols,
                                                               const float* __restrict__ x, int64_t tokens,
                                                               int64_t steps_per_split, float* __restrict__ out) {
    constexpr int kTokenTiles = BM / 16;
    __shared__ __align__(16) __half a_tiles[2][BM * kMmaPitch];        // x, [token][k]
    __shared__ __align__(16) __half b_tiles[2][kMmaRows * kMmaPitch];  // W, [row][k]
    __shared__ float table[16];  // a decoder's level table (NF4), see int4_gemv.cuh
    Source source = weights;
    source.bind(table);
    __syncthreads();

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int64_t row0 = blockIdx.x * (int64_t)kMmaRows;
    const int64_t token0 = blockIdx.y * (int64_t)BM;

    float acc[kTokenTiles][2][4];
#pragma unroll
    for (int m = 0; m < kTokenTiles; m++)
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[m][n][i] = 0.0f;

    const int64_t first_step = blockIdx.z * steps_per_split;
    const int64_t end_step = min(cols / kMmaK, first_step + steps_per_split);
    out += blockIdx.z * tokens * rows;

    MmaStage<BM> stage;
    mma_load_stage<Source, BM>(source, stage, first_step * kMmaK, row0, rows, cols, x, token0, tokens);
    mma_store_stage<Source, BM>(stage, a_tiles[0], b_tiles[0], first_step * kMmaK);
    __syncthreads();

    for (int64_t step = first_step; step < end_step; step++) {
        const int buffer = static_cast<int>((step - first_step) & 1);
        const bool more = step + 1 < end_step;
        if (more) mma_load_stage<Source, BM>(source, stage, (step + 1) * kMmaK, row0, rows, cols, x, token0, tokens);
        const __half* a_tile = a_tiles[buffer];
        const __half* b_tile = b_tiles[buffer];
#pragma unroll
        for (int kk = 0; kk < kMmaK; kk += 16) {
            // b: matrices (rows 0-7, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 0-7), (rows 8-15, k 8-15).
            uint32_t b[4];
            ldmatrix_x4(b, b_tile + (warp * 16 + (lane & 7) + ((lane >> 4) << 3)) * kMmaPitch + kk +
                               ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int m = 0; m < kTokenTiles; m++) {
                uint32_t a[4];
                ldmatrix_x4(a, a_tile + (m * 16 + (lane & 15)) * kMmaPitch + kk + (lane >> 4) * 8);
                mma_16816(acc[m][0], a, b[0], b[1]);
                mma_16816(acc[m][1], a, b[2], b[3]);
            }
        }
        if (more) mma_store_stage<Source, BM>(stage, a_tiles[buffer ^ 1], b_tiles[buffer ^ 1], (step + 1) * kMmaK);
        __syncthreads();
    }

    // Accumulator fragment: c0, c1 at (token lane/4, rows 2*(lane%4) + {0, 1}); c2, c3 at token + 8.
#pragma unroll
    for (int m = 0; m < kTokenTiles; m++) {
#pragma unroll
        for (int n = 0; n < 2; n++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int64_t token = token0 + m * 16 + (lane >> 2) + (i >= 2 ? 8 : 0);
                const int64_t row = row0 + warp * 16 + n * 8 + 2 * (lane & 3) + (i & 1);
                if (token < tokens && row < rows) out[token * rows + row] = acc[m][n][i];
            }
        }
    }
}

// ---- the staged kernel: 33+ tokens ------------------------------------------------------
// At 64-256 tokens the narrow kernel ran at 0.1-0.3x cuBLAS FP16 (bench/results/gpu-20261122-h100).
// A first answer, 128 x 128 tiles over 8 warps with the weights still decoded through registers,
// gained 1.2-1.7x at the large shapes but stayed at 0.13-0.25x cuBLAS; bench/gpu/gemm's probe
// showed why: with no weight loads at all it ran twice as fast, so one k-step of prefetch left the
// loads' latency exposed (F16 weights, a plain copy, cost as much as Q4_0's decode).
// So from 33 tokens the GEMM runs on f16 operands only, both copied with cp.async through a
// kStages-deep ring of shared-memory stages:
//   - x is converted to f16 once per matmul (f32_to_f16_kernel), rounded as the narrow kernel rounds it;
//   - F16 weights are read where they are; every other layout is first decoded to f16 rows by
//     dequant_f16_kernel, with the same 8-weight readers, in chunks of at most kDequantChunkBytes;
//   - a block owns 128 weight rows x BM (32, 64 or 128) tokens, 8 warps as 2 token halves x 4 row
//     quarters (each BM/2 tokens x 32 rows, 4 x BM/32 mma per 16 columns).
// F16 weights take this path from kStagedMinTokensF16 (8) tokens, decoded layouts from kStagedMinTokens.
// The decoded chunk costs a write and a read of rows x cols x 2 bytes: from 33 tokens that is less
// than the exposed latency it replaces (bench/gpu/gemm/run.sh times the path and its parts).
constexpr int kStagedRows = 128;
constexpr int kStagedThreads = 256;
constexpr int kStagedMinTokens = 33;     // decoded layouts: below, the narrow kernel is faster
// F16 rows are read as they are, so nothing offsets the staging's gain: on the H100, 14336x4096 at
// 17-32 tokens took 63-72 us staged and 113 us at 16 tokens on the narrow kernel, whose one step of
// prefetch is as short at 8 tokens (bench/results/gpu-20261123-h100).
constexpr int kStagedMinTokensF16 = kMmaMinTokens;
// LATHE_MMA_STAGES: a build-time knob for bench/gpu/gemm/run.sh -DLATHE_MMA_STAGES=N experiments.
#ifndef LATHE_MMA_STAGES
#define LATHE_MMA_STAGES 3
#endif
constexpr int kStages = LATHE_MMA_STAGES;
constexpr int kStagedBlocksPerSm = 2;                 // split-K target: 108 KB of stages each at BM 128, 128 registers
constexpr int64_t kDequantChunkBytes = 64LL << 20;    // f16 rows decoded at a time

__device__ __forceinline__ void cp_async16(void* shared, const void* global) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared_address(shared)), "l"(global));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait_group() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// One k-step of R rows of an f16 matrix [*, ld] (row first_row on) into tile [R][kMmaPitch], by
// kStagedThreads threads in 16-byte cp.async copies, 8 per row; rows past last_row repeat it (the
// outputs they feed are never stored). Does not commit the group.
template <int R>
__device__ __forceinline__ void copy_rows_f16(__half* tile, const __half* __restrict__ src, int64_t ld, int64_t k0,
                                              int64_t first_row, int64_t last_row) {
    constexpr int kChunksPerRow = kMmaK / 8;
    constexpr int kPerThread = R * kChunksPerRow / kStagedThreads;
    static_assert(kPerThread * kStagedThreads == R * kChunksPerRow, "threads must divide the tile's copies");
#pragma unroll
    for (int j = 0; j < kPerThread; j++) {
        const int v = threadIdx.x + kStagedThreads * j;
        const int64_t row = min(first_row + v / kChunksPerRow, last_row);
        cp_async16(tile + (v / kChunksPerRow) * kMmaPitch + 8 * (v % kChunksPerRow),
                   src + row * ld + k0 + 8 * (v % kChunksPerRow));
    }
}

// One warp's mma over one k-step: acc [TOKEN_TILES x 16 tokens][4 x 8 rows] += a_tile's tokens .
// b_tile's 32 rows, both [*][kMmaPitch] f16 in shared memory, already offset to the warp's part.
template <int TOKEN_TILES>
__device__ __forceinline__ void warp_tile_mma(float (&acc)[TOKEN_TILES][4][4], const __half* a_tile,
                                              const __half* b_tile, int lane) {
#pragma unroll
    for (int kk = 0; kk < kMmaK; kk += 16) {
        // b[h]: rows 16h .. 16h+15 of the warp's 32, fragments as in the narrow kernel.
        uint32_t b[2][4];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            ldmatrix_x4(b[h], b_tile + (16 * h + (lane & 7) + ((lane >> 4) << 3)) * kMmaPitch + kk + ((lane >> 3) & 1) * 8);
        }
#pragma unroll
        for (int m = 0; m < TOKEN_TILES; m++) {
            uint32_t a[4];
            ldmatrix_x4(a, a_tile + (m * 16 + (lane & 15)) * kMmaPitch + kk + (lane >> 4) * 8);
#pragma unroll
            for (int h = 0; h < 2; h++) {
                mma_16816(acc[m][2 * h], a, b[h][0], b[h][1]);
                mma_16816(acc[m][2 * h + 1], a, b[h][2], b[h][3]);
            }
        }
    }
}

// Stores a warp's accumulators (first token token0, first row row0) into out [tokens, out_ld]:
// c0, c1 at (token lane/4, rows 2*(lane%4) + {0, 1}); c2, c3 at token + 8.
template <int TOKEN_TILES>
__device__ __forceinline__ void warp_tile_store(const float (&acc)[TOKEN_TILES][4][4], float* __restrict__ out,
                                                int64_t out_ld, int64_t token0, int64_t tokens, int64_t row0,
                                                int64_t rows, int lane) {
#pragma unroll
    for (int m = 0; m < TOKEN_TILES; m++) {
#pragma unroll
        for (int n = 0; n < 4; n++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int64_t token = token0 + m * 16 + (lane >> 2) + (i >= 2 ? 8 : 0);
                const int64_t row = row0 + n * 8 + 2 * (lane & 3) + (i & 1);
                if (token < tokens && row < rows) out[token * out_ld + row] = acc[m][n][i];
            }
        }
    }
}

// out: [tokens, out_ld] (its rows 0 .. rows-1 written), or with splits the workspace
// [gridDim.z, tokens, rows] (split z at z * tokens * rows). w: f16 [rows, cols]; xh: f16 [tokens, cols].
template <int BM>
__global__ void __launch_bounds__(kStagedThreads) mma_gemm_staged_kernel(const __half* __restrict__ w, int64_t rows,
                                                                       int64_t cols, const __half* __restrict__ xh,
                                                                       int64_t tokens, int64_t steps_per_split,
                                                                       float* __restrict__ out, int64_t out_ld) {
    constexpr int kWarpTokens = BM / 2;
    constexpr int kTokenTiles = kWarpTokens / 16;
    constexpr int kStageHalves = (BM + kStagedRows) * kMmaPitch;  // x [BM][pitch], then W [128][pitch]
    extern __shared__ __align__(16) __half stages[];

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warp_token = warp >> 2;  // which half of the BM tokens
    const int warp_row = warp & 3;     // which 32 of the 128 rows
    const int64_t row0 = blockIdx.x * (int64_t)kStagedRows;
    const int64_t token0 = blockIdx.y * (int64_t)BM;
    const int64_t first_step = blockIdx.z * steps_per_split;
    const int64_t end_step = min(cols / kMmaK, first_step + steps_per_split);
    if (gridDim.z > 1) {
        out += blockIdx.z * tokens * rows;
        out_ld = rows;
    }

    float acc[kTokenTiles][4][4];
#pragma unroll
    for (int m = 0; m < kTokenTiles; m++)
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[m][n][i] = 0.0f;

    auto issue = [&](int64_t step) {
        __half* stage = stages + static_cast<int>((step - first_step) % kStages) * kStageHalves;
        copy_rows_f16<BM>(stage, xh, cols, step * kMmaK, token0, tokens - 1);
        copy_rows_f16<kStagedRows>(stage + BM * kMmaPitch, w, cols, step * kMmaK, row0, rows - 1);
    };
    // One commit group per k-step (empty past the end), so that waiting for all but the newest
    // kStages - 2 groups means this step's stage has landed.
#pragma unroll
    for (int i = 0; i < kStages - 1; i++) {
        if (first_step + i < end_step) issue(first_step + i);
        cp_async_commit();
    }
    for (int64_t step = first_step; step < end_step; step++) {
        cp_async_wait_group<kStages - 2>();
        __syncthreads();  // this step's stage is everyone's, and the stage read last step is free
        if (step + kStages - 1 < end_step) issue(step + kStages - 1);
        cp_async_commit();
        const __half* stage = stages + static_cast<int>((step - first_step) % kStages) * kStageHalves;
        warp_tile_mma<kTokenTiles>(acc, stage + warp_token * kWarpTokens * kMmaPitch,
                                   stage + (BM + warp_row * 32) * kMmaPitch, lane);
    }
    warp_tile_store<kTokenTiles>(acc, out, out_ld, token0 + warp_token * kWarpTokens, tokens, row0 + warp_row * 32,
                                 rows, lane);
}

// out [r, k] = W [row0 + r, k] as f16 for r < count: each thread decodes 8 weights with the tile
// source's reader and stores them as WeightStage does.
template <class Source>
__global__ void dequant_f16_kernel(Source weights, int64_t row0, int64_t count, int64_t cols, __half* __restrict__ out) {
    __shared__ float table[16];
    Source source = weights;
    source.bind(table);
    __syncthreads();
    const int64_t steps = cols / 8;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count * steps;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / steps;
        const int64_t c = i % steps;
        float v[8];
        source.load8(row0 + r, c, v);
        __half* row = out + r * cols;
        *reinterpret_cast<uint2*>(row + Source::column(c, 0, 0)) = make_uint2(pack_half2(v[0], v[1]), pack_half2(v[2], v[3]));
        *reinterpret_cast<uint2*>(row + Source::column(c, 4, 0)) = make_uint2(pack_half2(v[4], v[5]), pack_half2(v[6], v[7]));
    }
}

// out [i] = f16(x [i]), i < 4 * n4 (x 16-byte aligned), rounded as the narrow kernel rounds x.
__global__ void f32_to_f16_kernel(const float4* __restrict__ x, int64_t n4, __half2* __restrict__ out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
        const float4 v = x[i];
        out[2 * i] = __floats2half2_rn(v.x, v.y);
        out[2 * i + 1] = __floats2half2_rn(v.z, v.w);
    }
}

// out [t, out_ld] row t, columns r < rows = sum over z of partial [z, t, r], z in order.
__global__ void sum_splits_kernel(const float* __restrict__ partial, int splits, int64_t tokens, int64_t rows,
                                  float* __restrict__ out, int64_t out_ld) {
    const int64_t n = tokens * rows;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float sum = partial[i];
        for (int z = 1; z < splits; z++) sum += partial[z * n + i];
        out[(i / rows) * out_ld + i % rows] = sum;
    }
}

// Launches sum_splits_kernel over the [splits, tokens, rows] workspace of a split-K GEMM, into out
// [tokens, out_ld] (out_ld = rows unless the GEMM wrote a column range of a wider output).
inline void sum_splits(const float* workspace, int splits, int64_t tokens, int64_t rows, float* out,
                       int multiprocessors, cudaStream_t s, int64_t out_ld = 0) {
    const int64_t n = tokens * rows;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 8LL * multiprocessors));
    sum_splits_kernel<<<blocks, 256, 0, s>>>(workspace, splits, tokens, rows, out, out_ld > 0 ? out_ld : rows);
}

// How many k-ranges to split cols into so that about blocks_per_sm blocks run per SM.
inline int mma_splits(int64_t blocks, int64_t cols, int multiprocessors, int blocks_per_sm = kMmaBlocksPerSm) {
    const int64_t wanted = (static_cast<int64_t>(blocks_per_sm) * multiprocessors + blocks - 1) / blocks;
    const int64_t most = (cols / kMmaK) / kMmaMinStepsPerSplit;
    const int64_t splits = wanted < most ? wanted : most;
    return splits > 1 ? static_cast<int>(splits) : 1;
}

inline size_t round_up_256(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Dynamic shared memory of one staged block: kStages x (x [BM] + W [128] rows) x kMmaPitch halves.
constexpr int staged_shared_bytes(int bm) {
    return kStages * (bm + kStagedRows) * kMmaPitch * static_cast<int>(sizeof(__half));
}

// Shared memory a block may opt in to on the current device: 227 KB on sm_90, 163 KB on sm_80,
// 99 KB on sm_86/89, where the 128-token tile (108 KB) does not fit and the 64-token one runs.
// NOTE: queried once per process, for the device current then (one device per process).
inline int max_shared_per_block() {
    static const int bytes = [] {
        int device = 0, value = 0;
        if (cudaGetDevice(&device) != cudaSuccess ||
            cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
            return 0;
        }
        return value;
    }();
    return bytes;
}

// One matmul's tiling: which kernel and token tile, the grid of one row chunk, and the workspace.
// The narrow kernel runs all rows as one chunk; the staged one runs chunk_rows rows at a time.
struct MmaPlan {
    bool staged;
    int bm;              // tokens per block
    int64_t chunk_rows;  // rows per launch (the last chunk may be shorter)
    int64_t row_blocks;  // of a full chunk
    int64_t token_blocks;
    int64_t per_split;   // k-steps per split
    int splits;
    size_t x_half_bytes;   // workspace [0, x_half_bytes): x as f16 [tokens, cols] (staged)
    size_t w_half_bytes;   // then f16 rows [chunk_rows, cols] decoded from the weights (staged, not F16)
    size_t bytes;          // then the partial sums [splits, tokens, chunk_rows]

    static MmaPlan of(int64_t rows, int64_t cols, int64_t tokens, bool f16_rows, int multiprocessors) {
        MmaPlan p{};
        p.staged = tokens >= (f16_rows ? kStagedMinTokensF16 : kStagedMinTokens);
        p.bm = p.staged ? (tokens <= 32 ? 32 : tokens <= 64 ? 64 : 128) : tokens <= 16 ? 16 : 32;
        if (p.staged && p.bm == 128 && staged_shared_bytes(128) > max_shared_per_block()) p.bm = 64;
        const int tile_rows = p.staged ? kStagedRows : kMmaRows;
        p.chunk_rows = rows;
        if (p.staged && !f16_rows) {
            const int64_t fit = kDequantChunkBytes / (2 * cols) / kStagedRows * kStagedRows;
            p.chunk_rows = std::min<int64_t>(rows, std::max<int64_t>(fit, kStagedRows));
        }
        p.row_blocks = (p.chunk_rows + tile_rows - 1) / tile_rows;
        p.token_blocks = (tokens + p.bm - 1) / p.bm;
        const int64_t steps = cols / kMmaK;
        const int wanted = mma_splits(p.row_blocks * p.token_blocks, cols, multiprocessors,
                                      p.staged ? kStagedBlocksPerSm : kMmaBlocksPerSm);
        p.per_split = (steps + wanted - 1) / wanted;
        p.splits = static_cast<int>((steps + p.per_split - 1) / p.per_split);
        p.x_half_bytes = p.staged ? round_up_256(sizeof(__half) * static_cast<size_t>(tokens * cols)) : 0;
        p.w_half_bytes = p.staged && !f16_rows ? round_up_256(sizeof(__half) * static_cast<size_t>(p.chunk_rows * cols)) : 0;
        p.bytes = p.x_half_bytes + p.w_half_bytes +
                  (p.splits > 1 ? sizeof(float) * static_cast<size_t>(p.splits) * tokens * p.chunk_rows : 0);
        return p;
    }
};

// Whether a tile source reads f16 rows the staged kernel can take as they are.
template <class Source>
struct IsF16Rows {
    static constexpr bool value = false;
};
template <>
struct IsF16Rows<GgmlTileSource<kWeightF16>> {
    static constexpr bool value = true;
};

template <class Source, int BM>
inline cudaError_t launch_mma_gemm_narrow(const MmaPlan& p, Source source, int64_t rows, int64_t cols, const float* x,
                                          int64_t tokens, float* out, float* partials, int multiprocessors,
                                          cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>(p.row_blocks), static_cast<unsigned>(p.token_blocks),
                    static_cast<unsigned>(p.splits));
    mma_gemm_kernel<Source, BM><<<grid, kMmaThreads, 0, s>>>(source, rows, cols, x, tokens, p.per_split,
                                                             p.splits > 1 ? partials : out);
    if (p.splits > 1) sum_splits(partials, p.splits, tokens, rows, out, multiprocessors, s);
    return cudaGetLastError();
}

// One chunk of rows: w [chunk, cols] f16, into out's columns [0, chunk) (out already offset, row length out_ld).
template <int BM>
inline cudaError_t launch_mma_gemm_staged(const MmaPlan& p, const __half* w, int64_t chunk, int64_t cols,
                                          const __half* xh, int64_t tokens, float* out, int64_t out_ld,
                                          float* partials, int multiprocessors, cudaStream_t s) {
    constexpr int kSharedBytes = staged_shared_bytes(BM);
    // Above 48 KB of dynamic shared memory a kernel must opt in, once per instantiation.
    // NOTE: the attribute is set for the device current at the first launch: one device per process.
    static const cudaError_t opted_in =
        cudaFuncSetAttribute(mma_gemm_staged_kernel<BM>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBytes);
    if (opted_in != cudaSuccess) return opted_in;
    const dim3 grid(static_cast<unsigned>((chunk + kStagedRows - 1) / kStagedRows), static_cast<unsigned>(p.token_blocks),
                    static_cast<unsigned>(p.splits));
    mma_gemm_staged_kernel<BM><<<grid, kStagedThreads, kSharedBytes, s>>>(w, chunk, cols, xh, tokens, p.per_split,
                                                                       p.splits > 1 ? partials : out, out_ld);
    if (p.splits > 1) sum_splits(partials, p.splits, tokens, chunk, out, multiprocessors, s, out_ld);
    return cudaGetLastError();
}

// Bytes of workspace launch_mma_gemm needs for this shape (0: none); f16_rows: the weights are
// F16 in the ggml layout (IsF16Rows), which the staged kernel reads without decoding a copy.
inline size_t mma_workspace_bytes(int64_t rows, int64_t cols, int64_t tokens, bool f16_rows, int multiprocessors) {
    return MmaPlan::of(rows, cols, tokens, f16_rows, multiprocessors).bytes;
}

// Needs cols % kMmaK == 0, x and the weights 16-byte aligned, 1 <= tokens with ceil(tokens / 16)
// <= 65535, and `workspace` (256-byte aligned) of mma_workspace_bytes(..., IsF16Rows<Source>::value, ...) bytes.
template <class Source>
inline cudaError_t launch_mma_gemm(Source source, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                                   float* out, float* workspace, int multiprocessors, cudaStream_t s) {
    constexpr bool kF16Rows = IsF16Rows<Source>::value;
    const MmaPlan p = MmaPlan::of(rows, cols, tokens, kF16Rows, multiprocessors);
    char* bytes = reinterpret_cast<char*>(workspace);
    float* partials = reinterpret_cast<float*>(bytes + p.x_half_bytes + p.w_half_bytes);
    if (!p.staged) {
        return p.bm == 16 ? launch_mma_gemm_narrow<Source, 16>(p, source, rows, cols, x, tokens, out, partials, multiprocessors, s)
                          : launch_mma_gemm_narrow<Source, 32>(p, source, rows, cols, x, tokens, out, partials, multiprocessors, s);
    }
    __half* xh = reinterpret_cast<__half*>(bytes);
    const int64_t n4 = tokens * cols / 4;
    f32_to_f16_kernel<<<static_cast<unsigned>(std::min<int64_t>((n4 + 255) / 256, 8LL * multiprocessors)), 256, 0, s>>>(
        reinterpret_cast<const float4*>(x), n4, reinterpret_cast<__half2*>(xh));
    __half* decoded = reinterpret_cast<__half*>(bytes + p.x_half_bytes);
    for (int64_t row0 = 0; row0 < rows; row0 += p.chunk_rows) {
        const int64_t chunk = std::min(p.chunk_rows, rows - row0);
        const __half* w;
        if constexpr (kF16Rows) {
            w = static_cast<const __half*>(source.values) + row0 * cols;
        } else {
            const int64_t n = chunk * (cols / 8);
            dequant_f16_kernel<Source><<<static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 16LL * multiprocessors)),
                                         256, 0, s>>>(source, row0, chunk, cols, decoded);
            w = decoded;
        }
        const cudaError_t status =
            p.bm == 32   ? launch_mma_gemm_staged<32>(p, w, chunk, cols, xh, tokens, out + row0, rows, partials, multiprocessors, s)
            : p.bm == 64 ? launch_mma_gemm_staged<64>(p, w, chunk, cols, xh, tokens, out + row0, rows, partials, multiprocessors, s)
                         : launch_mma_gemm_staged<128>(p, w, chunk, cols, xh, tokens, out + row0, rows, partials, multiprocessors, s);
        if (status != cudaSuccess) return status;
    }
    return cudaGetLastError();
}

inline cudaError_t launch_mma_gemm_ggml(int format, const void* values, const __half* scales, int64_t rows,
                                        int64_t cols, const float* x, int64_t tokens, float* out, float* workspace,
                                        int multiprocessors, cudaStream_t s) {
#define LATHE_MMA_GGML(F) \
    launch_mma_gemm(GgmlTileSource<F>{values, scales, cols}, rows, cols, x, tokens, out, workspace, multiprocessors, s)
    switch (format) {
        case kWeightF16: return LATHE_MMA_GGML(kWeightF16);
        case kWeightBf16: return LATHE_MMA_GGML(kWeightBf16);
        case kWeightQ8_0: return LATHE_MMA_GGML(kWeightQ8_0);
        case kWeightQ4_0: return LATHE_MMA_GGML(kWeightQ4_0);
        case kWeightQ4_K: return LATHE_MMA_GGML(kWeightQ4_K);
        case kWeightQ5_K: return LATHE_MMA_GGML(kWeightQ5_K);
        case kWeightQ6_K: return LATHE_MMA_GGML(kWeightQ6_K);
        default: return cudaErrorInvalidValue;  // F32 stays on the f32 GEMV (see the header)
    }
#undef LATHE_MMA_GGML
}

}  // namespace lathe
