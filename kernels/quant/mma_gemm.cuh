// Tensor-core dequant GEMM (W4A16 / W8A16 / W16A16) for 8+ tokens: prefill chunks and batched
// decode. out [tokens, rows] = x [tokens, cols] . W^T, W in any layout the GEMVs read
// (quant/gemv.cuh for the ggml layouts, quant/int4_gemv.cuh for INT4 group-wise and NF4).
//
// Algorithm: a block owns kMmaRows = 64 weight rows (output features), BM in {16, 32, 64} tokens
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

// One k-step's global data of one thread, held in registers between the load and the store.
template <int BM>
struct MmaStage {
    static constexpr int kStepsPerRow = kMmaK / 8;                             // 8-weight loads per row: 8
    static constexpr int kWeightSteps = kMmaRows * kStepsPerRow / kMmaThreads;  // per thread: 4
    static constexpr int kXVectors = BM * kMmaK / 4 / kMmaThreads;            // float4 of x: BM/8
    static constexpr int kXVectorsRounded = kXVectors > 0 ? kXVectors : 1;
    float w[kWeightSteps][8];
    float4 x[kXVectorsRounded];
};

template <class Source, int BM>
__device__ __forceinline__ void mma_load_stage(const Source& source, MmaStage<BM>& stage, int64_t k0, int64_t row0,
                                               int64_t rows, int64_t cols, const float* __restrict__ x,
                                               int64_t token0, int64_t tokens) {
    const int tid = threadIdx.x;
#pragma unroll
    for (int j = 0; j < MmaStage<BM>::kWeightSteps; j++) {
        const int s = tid + kMmaThreads * j;
        const int64_t row = row0 + s / MmaStage<BM>::kStepsPerRow;
        if (row < rows) {
            source.load8(row, k0 / 8 + s % MmaStage<BM>::kStepsPerRow, stage.w[j]);
        } else {
#pragma unroll
            for (int k = 0; k < 8; k++) stage.w[j][k] = 0.0f;
        }
    }
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
#pragma unroll
    for (int j = 0; j < MmaStage<BM>::kWeightSteps; j++) {
        const int s = tid + kMmaThreads * j;
        __half* row = b_tile + (s / MmaStage<BM>::kStepsPerRow) * kMmaPitch;
        const int64_t c = k0 / 8 + s % MmaStage<BM>::kStepsPerRow;
        const float* w = stage.w[j];
        // Weights 0-3 and 4-7 each cover 4 consecutive columns (Q4_0's two nibble halves sit 16
        // columns apart; every other layout has all 8 consecutive): two 8-byte stores.
        *reinterpret_cast<uint2*>(row + Source::column(c, 0, k0)) = make_uint2(pack_half2(w[0], w[1]), pack_half2(w[2], w[3]));
        *reinterpret_cast<uint2*>(row + Source::column(c, 4, k0)) = make_uint2(pack_half2(w[4], w[5]), pack_half2(w[6], w[7]));
    }
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

// out [i] = sum over z of partial [z, i], for i < n, z in order.
__global__ void sum_splits_kernel(const float* __restrict__ partial, int splits, int64_t n, float* __restrict__ out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float sum = partial[i];
        for (int z = 1; z < splits; z++) sum += partial[z * n + i];
        out[i] = sum;
    }
}

// Launches sum_splits_kernel over the [splits, tokens * rows] workspace of a split-K GEMM, into out.
inline void sum_splits(const float* workspace, int splits, int64_t tokens, int64_t rows, float* out,
                       int multiprocessors, cudaStream_t s) {
    const int64_t n = tokens * rows;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 8LL * multiprocessors));
    sum_splits_kernel<<<blocks, 256, 0, s>>>(workspace, splits, n, out);
}

// How many k-ranges to split cols into so that about kMmaBlocksPerSm blocks run per SM.
inline int mma_splits(int64_t blocks, int64_t cols, int multiprocessors) {
    const int64_t wanted = (static_cast<int64_t>(kMmaBlocksPerSm) * multiprocessors + blocks - 1) / blocks;
    const int64_t most = (cols / kMmaK) / kMmaMinStepsPerSplit;
    const int64_t splits = wanted < most ? wanted : most;
    return splits > 1 ? static_cast<int>(splits) : 1;
}

// Bytes of workspace launch_mma_gemm needs for this shape (0: none).
inline size_t mma_workspace_bytes(int64_t rows, int64_t cols, int64_t tokens, int multiprocessors) {
    const int bm = tokens <= 16 ? 16 : tokens <= 32 ? 32 : 64;
    const int64_t blocks = ((rows + kMmaRows - 1) / kMmaRows) * ((tokens + bm - 1) / bm);
    const int splits = mma_splits(blocks, cols, multiprocessors);
    return splits > 1 ? sizeof(float) * static_cast<size_t>(splits) * tokens * rows : 0;
}

template <class Source, int BM>
inline cudaError_t launch_mma_gemm_bm(Source source, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                                      float* out, float* workspace, int multiprocessors, cudaStream_t s) {
    const int64_t row_blocks = (rows + kMmaRows - 1) / kMmaRows;
    const int64_t token_blocks = (tokens + BM - 1) / BM;
    const int64_t steps = cols / kMmaK;
    int splits = mma_splits(row_blocks * token_blocks, cols, multiprocessors);
    const int64_t per_split = (steps + splits - 1) / splits;
    splits = static_cast<int>((steps + per_split - 1) / per_split);
    const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(token_blocks), static_cast<unsigned>(splits));
    mma_gemm_kernel<Source, BM><<<grid, kMmaThreads, 0, s>>>(source, rows, cols, x, tokens, per_split,
                                                             splits > 1 ? workspace : out);
    if (splits > 1) {
        sum_splits(workspace, splits, tokens, rows, out, multiprocessors, s);
    }
    return cudaGetLastError();
}

// Needs cols % kMmaK == 0, x 16-byte aligned, 1 <= tokens with ceil(tokens / 64) <= 65535, and
// `workspace` of mma_workspace_bytes(rows, cols, tokens, multiprocessors) bytes.
template <class Source>
inline cudaError_t launch_mma_gemm(Source source, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                                   float* out, float* workspace, int multiprocessors, cudaStream_t s) {
    if (tokens <= 16) return launch_mma_gemm_bm<Source, 16>(source, rows, cols, x, tokens, out, workspace, multiprocessors, s);
    if (tokens <= 32) return launch_mma_gemm_bm<Source, 32>(source, rows, cols, x, tokens, out, workspace, multiprocessors, s);
    // NOTE: a 128-token tile needs 255 registers (with spills) and 55 KB of static shared memory.
    return launch_mma_gemm_bm<Source, 64>(source, rows, cols, x, tokens, out, workspace, multiprocessors, s);
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
        case kWeightQ6_K: return LATHE_MMA_GGML(kWeightQ6_K);
        default: return cudaErrorInvalidValue;  // F32 stays on the f32 GEMV (see the header)
    }
#undef LATHE_MMA_GGML
}

}  // namespace lathe
