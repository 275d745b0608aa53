// Entry points of the dequant-matmul: the GEMVs (kernels/quant/gemv.cuh, int4_gemv.cuh) for a
// few tokens, the tensor-core GEMM (kernels/quant/mma_gemm.cuh) from kMmaMinTokens tokens on, and
// the 2:4 sparse-tensor-core GEMM (kernels/sparse/sparse24_mma.cuh; its GEMV is in sparse.cu).
#include "../../kernels/quant/gemv.cuh"
#include "../../kernels/quant/int4_gemv.cuh"
#include "../../kernels/quant/mma_gemm.cuh"
#include "../../kernels/sparse/sparse24_mma.cuh"
#include "handles.h"
#include "weight_format_checks.h"

// The workspace the tensor-core GEMM needs for this shape (nullptr when none): split-K partial
// sums, and for the staged kernel x in f16 and (unless f16_rows) a chunk of weights decoded to f16.
static int32_t mma_workspace(lathe_stream* stream, int64_t rows, int64_t cols, int64_t tokens, bool f16_rows,
                             float** out) {
    *out = nullptr;
    const size_t bytes = lathe::mma_workspace_bytes(rows, cols, tokens, f16_rows, stream->multiprocessors);
    if (bytes == 0) return LATHE_OK;
    void* scratch = nullptr;
    const int32_t status = lathe::stream_scratch(stream, bytes, &scratch);
    *out = static_cast<float*>(scratch);
    return status;
}

extern "C" int32_t lathe_matmul(lathe_stream* stream, int32_t weight_format, const void* weight_values,
                                const void* weight_scales, int64_t rows, int64_t cols, const float* x, int64_t tokens,
                                float* out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows > 0 && cols > 0, "weight shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    LATHE_REQUIRE(rows / lathe::kGemvWarps < 0x7fffffff, "rows=%lld is too many for one grid", (long long)rows);
    LATHE_REQUIRE(tokens >= 0, "tokens must not be negative, got %lld", (long long)tokens);
    int32_t status = lathe::check_weight_format("matmul weight", weight_format, weight_values, weight_scales, rows, cols);
    if (status != LATHE_OK) return status;
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(x != nullptr && out != nullptr, "x or out is NULL");
    LATHE_REQUIRE_ALIGNED(x, 4, "x");
    LATHE_REQUIRE_ALIGNED(out, 4, "out");
    // The vector path loads 8 weights and 2 float4 of x per lane-step: it needs rows of whole
    // 8-value steps and 16-byte aligned rows; anything else takes the scalar path (same result).
    const bool quantized = weight_format >= LATHE_WEIGHT_Q8_0;
    const bool vector_path = cols % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                             reinterpret_cast<uintptr_t>(weight_values) % 16 == 0;
    LATHE_REQUIRE(vector_path || !quantized,
                  "quantized matmul needs x and the weight values 16-byte aligned (x=%p values=%p)", (const void*)x,
                  weight_values);
    // grid.y holds at most 65535 groups of 4 tokens: split larger batches.
    const int64_t max_tokens = 65535LL * 4;
    // F32 weights stay on the f32 GEMV: the tensor-core path rounds its operands to f16.
    const bool tensor_cores = vector_path && cols % lathe::kMmaK == 0 && weight_format != LATHE_WEIGHT_F32;
    for (int64_t t0 = 0; t0 < tokens; t0 += max_tokens) {
        const int64_t n = tokens - t0 < max_tokens ? tokens - t0 : max_tokens;
        const __half* scales = static_cast<const __half*>(weight_scales);
        if (tensor_cores && n >= lathe::kMmaMinTokens) {
            float* workspace = nullptr;
            status = mma_workspace(stream, rows, cols, n, weight_format == LATHE_WEIGHT_F16, &workspace);
            if (status != LATHE_OK) return status;
            status = lathe::launch_status(
                lathe::launch_mma_gemm_ggml(weight_format, weight_values, scales, rows, cols, x + t0 * cols, n,
                                            out + t0 * rows, workspace, stream->multiprocessors, stream->stream),
                "mma_gemm_kernel");
        } else {
            status = lathe::launch_status(lathe::launch_gemv(weight_format, vector_path, weight_values, scales, rows,
                                                             cols, x + t0 * cols, n, out + t0 * rows, stream->stream),
                                          "gemv_kernel");
        }
        if (status != LATHE_OK) return status;
    }
    return LATHE_OK;
}

extern "C" int32_t lathe_matmul_int4(lathe_stream* stream, const void* qweight, const void* scales, const void* zeros,
                                     int64_t rows, int64_t cols, int64_t group, const float* x, int64_t tokens,
                                     float* out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows > 0 && cols > 0, "weight shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    LATHE_REQUIRE(group == 32 || group == 64 || group == 128, "group must be 32, 64 or 128, got %lld", (long long)group);
    LATHE_REQUIRE(cols % group == 0, "cols (%lld) must be a multiple of the group (%lld)", (long long)cols,
                  (long long)group);
    LATHE_REQUIRE(rows / lathe::kInt4Warps < 0x7fffffff, "rows=%lld is too many for one grid", (long long)rows);
    LATHE_REQUIRE(tokens >= 0 && (tokens + 3) / 4 <= 65535, "tokens must be in [0, 262140], got %lld",
                  (long long)tokens);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(qweight != nullptr && scales != nullptr && zeros != nullptr && x != nullptr && out != nullptr,
                  "a pointer argument is NULL");
    LATHE_REQUIRE_ALIGNED(qweight, 4, "qweight");
    LATHE_REQUIRE_ALIGNED(scales, 2, "scales");
    LATHE_REQUIRE_ALIGNED(x, 16, "x");
    LATHE_REQUIRE_ALIGNED(out, 4, "out");
    const lathe::GroupInt4Decoder decoder{static_cast<const __half*>(scales), static_cast<const uint8_t*>(zeros),
                                          static_cast<int>(group)};
    if (tokens >= lathe::kMmaMinTokens && cols % lathe::kMmaK == 0) {
        float* workspace = nullptr;
        const int32_t status = mma_workspace(stream, rows, cols, tokens, false, &workspace);
        if (status != LATHE_OK) return status;
        return lathe::launch_status(
            lathe::launch_mma_gemm(lathe::NibbleTileSource<lathe::GroupInt4Decoder>{
                                       static_cast<const uint32_t*>(qweight), decoder, cols},
                                   rows, cols, x, tokens, out, workspace, stream->multiprocessors, stream->stream),
            "mma_gemm_kernel<int4>");
    }
    return lathe::launch_status(lathe::launch_nibble_gemv(static_cast<const uint32_t*>(qweight), decoder, rows, cols,
                                                          x, tokens, out, stream->stream),
                                "int4_gemv_kernel");
}

extern "C" int32_t lathe_matmul_nf4(lathe_stream* stream, const void* qweight, const float* absmax, int64_t rows,
                                    int64_t cols, const float* x, int64_t tokens, float* out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows > 0 && cols > 0, "weight shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    LATHE_REQUIRE(cols % lathe::kNf4Block == 0, "cols (%lld) must be a multiple of the NF4 block (64)", (long long)cols);
    LATHE_REQUIRE(rows / lathe::kInt4Warps < 0x7fffffff, "rows=%lld is too many for one grid", (long long)rows);
    LATHE_REQUIRE(tokens >= 0 && (tokens + 3) / 4 <= 65535, "tokens must be in [0, 262140], got %lld",
                  (long long)tokens);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(qweight != nullptr && absmax != nullptr && x != nullptr && out != nullptr, "a pointer argument is NULL");
    LATHE_REQUIRE_ALIGNED(qweight, 4, "qweight");
    LATHE_REQUIRE_ALIGNED(absmax, 4, "absmax");
    LATHE_REQUIRE_ALIGNED(x, 16, "x");
    LATHE_REQUIRE_ALIGNED(out, 4, "out");
    const lathe::Nf4Decoder decoder{absmax};
    if (tokens >= lathe::kMmaMinTokens && cols % lathe::kMmaK == 0) {
        float* workspace = nullptr;
        const int32_t status = mma_workspace(stream, rows, cols, tokens, false, &workspace);
        if (status != LATHE_OK) return status;
        return lathe::launch_status(
            lathe::launch_mma_gemm(
                lathe::NibbleTileSource<lathe::Nf4Decoder>{static_cast<const uint32_t*>(qweight), decoder, cols}, rows,
                cols, x, tokens, out, workspace, stream->multiprocessors, stream->stream),
            "mma_gemm_kernel<nf4>");
    }
    return lathe::launch_status(lathe::launch_nibble_gemv(static_cast<const uint32_t*>(qweight), decoder, rows, cols,
                                                          x, tokens, out, stream->stream),
                                "int4_gemv_kernel<Nf4Decoder>");
}

extern "C" int32_t lathe_matmul_sparse24_mma(lathe_stream* stream, const void* fragments, const void* meta, int64_t rows,
                                             int64_t cols, const float* x, int64_t tokens, float* out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows > 0 && cols > 0, "weight shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    LATHE_REQUIRE(cols % lathe::kSpK == 0, "cols (%lld) must be a multiple of %d for the 2:4 tensor-core GEMM",
                  (long long)cols, lathe::kSpK);
    LATHE_REQUIRE((rows + lathe::kSpRows - 1) / lathe::kSpRows < 0x7fffffff, "rows=%lld is too many for one grid",
                  (long long)rows);
    LATHE_REQUIRE(tokens >= 0 && (tokens + 63) / 64 <= 65535, "tokens must be in [0, 4194240], got %lld",
                  (long long)tokens);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(fragments != nullptr && meta != nullptr && x != nullptr && out != nullptr,
                  "a pointer argument is NULL");
    LATHE_REQUIRE_ALIGNED(fragments, 16, "fragments");
    LATHE_REQUIRE_ALIGNED(meta, 4, "meta");
    LATHE_REQUIRE_ALIGNED(x, 16, "x");
    LATHE_REQUIRE_ALIGNED(out, 4, "out");
    void* workspace = nullptr;
    const size_t bytes = lathe::sparse24_mma_workspace_bytes(rows, cols, tokens, stream->multiprocessors);
    if (bytes > 0) {
        const int32_t status = lathe::stream_scratch(stream, bytes, &workspace);
        if (status != LATHE_OK) return status;
    }
    return lathe::launch_status(
        lathe::launch_sparse24_mma(static_cast<const uint32_t*>(fragments), static_cast<const uint32_t*>(meta), rows,
                                   cols, x, tokens, out, static_cast<float*>(workspace), stream->multiprocessors,
                                   stream->stream),
        "sparse24_mma_kernel");
}
