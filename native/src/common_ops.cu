// Entry points of the fused common ops (kernels/common): check arguments, launch on the stream.
#include "../../kernels/common/argmax.cuh"
#include "../../kernels/common/elementwise.cuh"
#include "../../kernels/common/embedding.cuh"
#include "../../kernels/common/rmsnorm.cuh"
#include "../../kernels/common/rope.cuh"
#include "handles.h"
#include "weight_format_checks.h"

using lathe::launch_status;

extern "C" {

int32_t lathe_embed(lathe_stream* stream, int32_t table_format, const void* table_values, const void* table_scales,
                    int64_t vocab, int64_t dim, const int32_t* tokens, int64_t n_tokens, float* out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(vocab > 0 && dim > 0, "table shape [%lld, %lld] must be positive", (long long)vocab, (long long)dim);
    LATHE_REQUIRE(n_tokens >= 0 && n_tokens <= 65535, "n_tokens must be in [0, 65535], got %lld", (long long)n_tokens);
    int32_t status = lathe::check_weight_format("embedding table", table_format, table_values, table_scales, vocab, dim);
    if (status != LATHE_OK) return status;
    if (n_tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(tokens != nullptr && out != nullptr, "tokens or out is NULL");
    return launch_status(lathe::launch_embed(table_format, table_values, static_cast<const __half*>(table_scales),
                                             vocab, dim, tokens, n_tokens, out, stream->stream),
                         "embed_kernel");
}

int32_t lathe_rmsnorm(lathe_stream* stream, float* out, const float* x, const float* weight, int64_t rows,
                      int64_t cols, float eps) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows >= 0 && rows <= 0x7fffffff, "rows must be in [0, 2^31), got %lld", (long long)rows);
    LATHE_REQUIRE(cols > 0, "cols must be positive, got %lld", (long long)cols);
    LATHE_REQUIRE(eps >= 0.0f, "eps must not be negative, got %g", eps);
    if (rows == 0) return LATHE_OK;
    LATHE_REQUIRE(out != nullptr && x != nullptr && weight != nullptr, "out, x or weight is NULL");
    return launch_status(lathe::launch_rmsnorm(out, x, weight, rows, cols, eps, stream->stream), "rmsnorm_kernel");
}

int32_t lathe_add_bias(lathe_stream* stream, float* x, const float* bias, int64_t rows, int64_t cols) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows >= 0 && cols > 0, "shape [%lld, %lld] is invalid", (long long)rows, (long long)cols);
    if (rows == 0) return LATHE_OK;
    LATHE_REQUIRE(x != nullptr && bias != nullptr, "x or bias is NULL");
    return launch_status(lathe::launch_add_bias(x, bias, rows, cols, stream->stream), "add_bias_kernel");
}

int32_t lathe_add(lathe_stream* stream, float* x, const float* y, int64_t n) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(n >= 0, "n must not be negative, got %lld", (long long)n);
    if (n == 0) return LATHE_OK;
    LATHE_REQUIRE(x != nullptr && y != nullptr, "x or y is NULL");
    return launch_status(lathe::launch_add(x, y, n, stream->stream), "add_kernel");
}

int32_t lathe_swiglu(lathe_stream* stream, float* gate, const float* up, int64_t n) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(n >= 0, "n must not be negative, got %lld", (long long)n);
    if (n == 0) return LATHE_OK;
    LATHE_REQUIRE(gate != nullptr && up != nullptr, "gate or up is NULL");
    return launch_status(lathe::launch_swiglu(gate, up, n, stream->stream), "swiglu_kernel");
}

int32_t lathe_gather_rows(lathe_stream* stream, float* out, const float* x, const int32_t* rows, int64_t n_rows,
                          int64_t x_rows, int64_t cols) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(n_rows >= 0 && x_rows >= 0 && cols > 0, "shapes n_rows=%lld x_rows=%lld cols=%lld are invalid",
                  (long long)n_rows, (long long)x_rows, (long long)cols);
    if (n_rows == 0) return LATHE_OK;
    LATHE_REQUIRE(out != nullptr && x != nullptr && rows != nullptr, "out, x or rows is NULL");
    return launch_status(lathe::launch_gather_rows(out, x, rows, n_rows, x_rows, cols, stream->stream),
                         "gather_rows_kernel");
}

int32_t lathe_rope(lathe_stream* stream, float* x, const int32_t* positions, const float* inv_freq, int64_t tokens,
                   int64_t heads, int64_t head_dim, int32_t style) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(tokens >= 0 && heads > 0, "tokens=%lld heads=%lld are invalid", (long long)tokens, (long long)heads);
    LATHE_REQUIRE(head_dim > 0 && head_dim % 2 == 0, "head_dim must be positive and even, got %lld", (long long)head_dim);
    LATHE_REQUIRE(style == LATHE_ROPE_INTERLEAVED || style == LATHE_ROPE_HALF_SPLIT,
                  "rope style must be LATHE_ROPE_INTERLEAVED (0) or LATHE_ROPE_HALF_SPLIT (1), got %d", style);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(x != nullptr && positions != nullptr && inv_freq != nullptr, "x, positions or inv_freq is NULL");
    return launch_status(lathe::launch_rope(x, positions, inv_freq, tokens, heads, head_dim, style, stream->stream),
                         "rope_kernel");
}

int32_t lathe_argmax(lathe_stream* stream, int32_t* out, const float* x, int64_t rows, int64_t cols) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(rows >= 0 && rows <= 0x7fffffff, "rows must be in [0, 2^31), got %lld", (long long)rows);
    LATHE_REQUIRE(cols > 0 && cols <= 0x7fffffff, "cols must be in [1, 2^31), got %lld", (long long)cols);
    if (rows == 0) return LATHE_OK;
    LATHE_REQUIRE(out != nullptr && x != nullptr, "out or x is NULL");
    void* workspace = nullptr;
    const size_t bytes = lathe::argmax_workspace_bytes(rows, cols, stream->multiprocessors);
    if (bytes > 0) {
        const int32_t status = lathe::stream_scratch(stream, bytes, &workspace);
        if (status != LATHE_OK) return status;
    }
    return launch_status(lathe::launch_argmax(out, x, rows, cols, workspace, stream->multiprocessors, stream->stream),
                         "argmax_kernel");
}

}  // extern "C"
