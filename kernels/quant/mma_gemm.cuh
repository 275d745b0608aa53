// Tensor-core dequant GEMM (W4A16 / W8A16 / W16A16) for 8+ tokens: prefill chunks and batched
// decode. out [tokens, rows] = x [tokens, cols] . W^T, W in any layout the GEMVs read
// (quant/gemv.cuh for the ggml layouts, quant/int4_gemv.cuh for INT4 group-wise and NF4).
//
// Algorithm: a block owns kMmaRows = 64 weight rows (output features) and BM in {16, 32, 64}
// tokens; its 4 warps each own 16 of the weight rows and all BM tokens. Per k-step of 32 columns
// (one Q8_0 / Q4_0 group) the block
//   1. decodes its 64 x 32 weights with the GEMV's 8-weight readers (two per thread) and stores
//      them as f16 in shared memory, and converts the x tile [BM, 32] from f32 to f16 beside it;
//   2. each warp runs (BM/16) x 2 x 2 mma.sync.m16n8k16 (f16 in, f32 accumulate), its fragments
//      read with ldmatrix.
// Shared memory is double-buffered: the next k-step's global loads are issued before this step's
// mma and stored after it, so one barrier per step separates the two buffers.
//
// Precision: x and the decoded weights are rounded to f16 (11-bit significand) before the
// multiply, as llama.cpp's and vLLM's GPU GEMMs do; products accumulate in f32. The relative error
// of an output row is then ~ 2^-11 (about 5e-4) rather than the GEMV's f32 ~ 1e-6, and values
// beyond f16's range (65504) would overflow: activations of Llama-family models stay far below.
// F32 weights keep the f32 GEMV for that reason (they are the reference format).
//
// Roofline: FLOPs = 2 * tokens * rows * cols; bytes = the weights once + x once per 64 rows.
// Each weight is read once per BM tokens, so at BM = 64 a Q4_0 weight (0.56 B) carries 128 FLOP:
// still under the H100's ~300 FLOP/B ridge of its dense f16 rate with mma.sync, so for decode
// batches and short prefills this kernel stays bandwidth-bound on the weights.
// Variants:
//   1. decode-in-registers into f16 shared tiles, BM x 64 x 32, double-buffered (this file).
//   (next: cp.async raw-byte staging so decode latency overlaps the loads; split-K for T <= 16.)
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "gemv.cuh"
#include "int4_gemv.cuh"

namespace lathe {

constexpr int kMmaRows = 64;        // weight rows per block: 4 warps x 16
constexpr int kMmaK = 32;           // columns per k-step; cols must be a multiple of it
constexpr int kMmaThreads = 128;
constexpr int kMmaPitch = kMmaK + 8;  // halves per shared row: 80 bytes keeps ldmatrix conflict-free
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
    // Column of weight k of lane-step c, counted from the start of its k-step (c / 4 * 32).
    __device__ __forceinline__ static int column(int64_t c, int k) {
        return static_cast<int>(gemv_x_index<FORMAT>(c, k) - (c / 4) * kMmaK);
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
    __device__ __forceinline__ static int column(int64_t c, int k) { return static_cast<int>(8 * (c % 4) + k); }
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
    static constexpr int kWeightSteps = kMmaRows * kMmaK / 8 / kMmaThreads;  // 8-weight loads: 2
    static constexpr int kXVectors = BM * kMmaK / 4 / kMmaThreads;          // float4 of x: BM/16
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
        const int s = tid + kMmaThreads * j;  // 4 lane-steps per row
        const int64_t row = row0 + s / 4;
        if (row < rows) {
            source.load8(row, k0 / 8 + s % 4, stage.w[j]);
        } else {
#pragma unroll
            for (int k = 0; k < 8; k++) stage.w[j][k] = 0.0f;
        }
    }
#pragma unroll
    for (int j = 0; j < MmaStage<BM>::kXVectors; j++) {
        const int v = tid + kMmaThreads * j;  // 8 float4 per token row
        const int64_t token = token0 + v / 8;
        stage.x[j] = token < tokens ? __ldg(reinterpret_cast<const float4*>(x + token * cols + k0 + 4 * (v % 8)))
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
        __half* row = b_tile + (s / 4) * kMmaPitch;
        const int64_t c = k0 / 8 + s % 4;
#pragma unroll
        for (int k = 0; k < 8; k++) row[Source::column(c, k)] = __float2half_rn(stage.w[j][k]);
    }
#pragma unroll
    for (int j = 0; j < MmaStage<BM>::kXVectors; j++) {
        const int v = tid + kMmaThreads * j;
        uint2 packed;
        packed.x = pack_half2(stage.x[j].x, stage.x[j].y);
        packed.y = pack_half2(stage.x[j].z, stage.x[j].w);
        *reinterpret_cast<uint2*>(a_tile + (v / 8) * kMmaPitch + 4 * (v % 8)) = packed;
    }
}

template <class Source, int BM>
__global__ void __launch_bounds__(kMmaThreads) mma_gemm_kernel(Source weights, int64_t rows, int64_t cols,
                                                               const float* __restrict__ x, int64_t tokens,
                                                               float* __restrict__ out) {
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

    MmaStage<BM> stage;
    mma_load_stage<Source, BM>(source, stage, 0, row0, rows, cols, x, token0, tokens);
    mma_store_stage<Source, BM>(stage, a_tiles[0], b_tiles[0], 0);
    __syncthreads();

    const int64_t steps = cols / kMmaK;
    for (int64_t step = 0; step < steps; step++) {
        const int buffer = static_cast<int>(step & 1);
        const bool more = step + 1 < steps;
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

// Needs cols % 32 == 0, x 16-byte aligned, tokens >= 1; grid.y = ceil(tokens / BM) <= 65535.
template <class Source>
inline cudaError_t launch_mma_gemm(Source source, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                                   float* out, cudaStream_t s) {
    const unsigned grid_x = static_cast<unsigned>((rows + kMmaRows - 1) / kMmaRows);
    if (tokens <= 16) {
        mma_gemm_kernel<Source, 16><<<dim3(grid_x, 1), kMmaThreads, 0, s>>>(source, rows, cols, x, tokens, out);
    } else if (tokens <= 32) {
        mma_gemm_kernel<Source, 32><<<dim3(grid_x, 1), kMmaThreads, 0, s>>>(source, rows, cols, x, tokens, out);
    } else {
        mma_gemm_kernel<Source, 64><<<dim3(grid_x, static_cast<unsigned>((tokens + 63) / 64)), kMmaThreads, 0, s>>>(
            source, rows, cols, x, tokens, out);
    }
    return cudaGetLastError();
}

inline cudaError_t launch_mma_gemm_ggml(int format, const void* values, const __half* scales, int64_t rows,
                                        int64_t cols, const float* x, int64_t tokens, float* out, cudaStream_t s) {
    switch (format) {
        case kWeightF16: return launch_mma_gemm(GgmlTileSource<kWeightF16>{values, scales, cols}, rows, cols, x, tokens, out, s);
        case kWeightBf16: return launch_mma_gemm(GgmlTileSource<kWeightBf16>{values, scales, cols}, rows, cols, x, tokens, out, s);
        case kWeightQ8_0: return launch_mma_gemm(GgmlTileSource<kWeightQ8_0>{values, scales, cols}, rows, cols, x, tokens, out, s);
        case kWeightQ4_0: return launch_mma_gemm(GgmlTileSource<kWeightQ4_0>{values, scales, cols}, rows, cols, x, tokens, out, s);
        case kWeightQ4_K: return launch_mma_gemm(GgmlTileSource<kWeightQ4_K>{values, scales, cols}, rows, cols, x, tokens, out, s);
        case kWeightQ6_K: return launch_mma_gemm(GgmlTileSource<kWeightQ6_K>{values, scales, cols}, rows, cols, x, tokens, out, s);
        default: return cudaErrorInvalidValue;  // F32 stays on the f32 GEMV (see the header)
    }
}

}  // namespace lathe
