// Entry point of the 2:4 structured-sparse GEMV (kernels/sparse/sparse24_gemv.cuh); the 2:4
// tensor-core GEMM's is in matmul.cu, beside the dense one whose split-K kernel it shares.
#include "../../kernels/sparse/sparse24_gemv.cuh"
#include "handles.h"

extern "C" int32_t lathe_matmul_sparse24(lathe_stream* stream, const void* values, const void* meta, int64_t rows,
                                         int64_t cols, const float* x, int64_t tokens, float* out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows > 0 && cols > 0, "weight shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    LATHE_REQUIRE(cols % 32 == 0, "cols (%lld) must be a multiple of 32 (8 groups of 4 per metadata word)",
                  (long long)cols);
    LATHE_REQUIRE(rows / lathe::kSparseWarps < 0x7fffffff, "rows=%lld is too many for one grid", (long long)rows);
    LATHE_REQUIRE(tokens >= 0 && (tokens + 3) / 4 <= 65535, "tokens must be in [0, 262140], got %lld",
                  (long long)tokens);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(values != nullptr && meta != nullptr && x != nullptr && out != nullptr, "a pointer argument is NULL");
    LATHE_REQUIRE_ALIGNED(values, 16, "values");
    LATHE_REQUIRE_ALIGNED(meta, 4, "meta");
    LATHE_REQUIRE_ALIGNED(x, 4, "x");
    LATHE_REQUIRE_ALIGNED(out, 4, "out");
    return lathe::launch_status(lathe::launch_sparse24_gemv(static_cast<const __half*>(values),
                                                            static_cast<const uint32_t*>(meta), rows, cols, x, tokens,
                                                            out, stream->stream),
                                "sparse24_gemv_kernel");
}
