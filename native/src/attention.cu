// Entry points of the paged-attention family (kernels/attention).
#include "../../kernels/attention/flash_prefill.cuh"
#include "../../kernels/attention/paged_attention.cuh"
#include "../../kernels/attention/kv_write.cuh"
#include "handles.h"

static_assert(lathe::kKvF32 == LATHE_KV_F32 && lathe::kKvF16 == LATHE_KV_F16 && lathe::kKvBf16 == LATHE_KV_BF16,
              "kernels/attention/kv_dtype.cuh and lathe.h disagree on the K/V dtype codes");

namespace {

// NOTE: checked before the stream (clearing the thread's message first, as entering does), so
// that a bad code is reported as such with or without a device: the bindings' tests call this
// through the real library on machines without a GPU.
int32_t check_kv_dtype(int32_t kv_dtype) {
    lathe::clear_error();
    if (lathe::kv_dtype_bytes(kv_dtype) == 0) {
        return lathe::fail(LATHE_ERR_UNSUPPORTED,
                           "kv_dtype %d is not a K/V pool type this library has kernels for (LATHE_KV_F32 = 0, "
                           "LATHE_KV_F16 = 1, LATHE_KV_BF16 = 2)",
                           kv_dtype);
    }
    return LATHE_OK;
}

// The pools must be aligned to their element type.
int32_t check_pools(int32_t kv_dtype, const void* k_cache, const void* v_cache) {
    const int64_t bytes = lathe::kv_dtype_bytes(kv_dtype);
    LATHE_REQUIRE_ALIGNED(k_cache, bytes, "k_cache");
    LATHE_REQUIRE_ALIGNED(v_cache, bytes, "v_cache");
    return LATHE_OK;
}

}  // namespace

extern "C" {

int32_t lathe_write_kv(lathe_stream* stream, int32_t kv_dtype, void* k_cache, void* v_cache, const float* k,
                       const float* v, const int32_t* slot_mapping, int64_t tokens, int64_t row_values,
                       int64_t num_slots) {
    int32_t status = check_kv_dtype(kv_dtype);
    if (status != LATHE_OK) return status;
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(tokens >= 0 && row_values > 0 && num_slots > 0, "tokens=%lld row_values=%lld num_slots=%lld are invalid",
                  (long long)tokens, (long long)row_values, (long long)num_slots);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(k_cache != nullptr && v_cache != nullptr && k != nullptr && v != nullptr && slot_mapping != nullptr,
                  "a K/V or slot_mapping pointer is NULL");
    status = check_pools(kv_dtype, k_cache, v_cache);
    if (status != LATHE_OK) return status;
    return lathe::launch_status(lathe::launch_write_kv(kv_dtype, k_cache, v_cache, k, v, slot_mapping, tokens,
                                                       row_values, num_slots, stream->stream),
                                "write_kv_kernel");
}

int32_t lathe_paged_attention(lathe_stream* stream, int32_t kv_dtype, float* out, const float* q, const void* k_cache,
                              const void* v_cache, const int32_t* positions, const int32_t* seq_start,
                              const int32_t* block_table_start, const int32_t* block_table, int64_t tokens,
                              int64_t seqs, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t block_size,
                              int64_t num_blocks, int64_t max_context, float scale) {
    int32_t status = check_kv_dtype(kv_dtype);
    if (status != LATHE_OK) return status;
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(tokens >= 0 && tokens <= 0x7fffffff, "tokens must be in [0, 2^31), got %lld", (long long)tokens);
    LATHE_REQUIRE(seqs > 0 || tokens == 0, "seqs must be positive when there are tokens, got %lld", (long long)seqs);
    LATHE_REQUIRE(heads > 0 && kv_heads > 0 && heads % kv_heads == 0,
                  "heads (%lld) must be a positive multiple of kv_heads (%lld)", (long long)heads, (long long)kv_heads);
    LATHE_REQUIRE(kv_heads <= 65535, "kv_heads must be at most 65535, got %lld", (long long)kv_heads);
    LATHE_REQUIRE(head_dim > 0 && head_dim <= 256, "head_dim must be in [1, 256], got %lld", (long long)head_dim);
    LATHE_REQUIRE(block_size > 0 && num_blocks > 0, "block_size=%lld num_blocks=%lld must be positive",
                  (long long)block_size, (long long)num_blocks);
    LATHE_REQUIRE(max_context >= 1, "max_context must be at least 1, got %lld", (long long)max_context);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(out != nullptr && q != nullptr && k_cache != nullptr && v_cache != nullptr && positions != nullptr &&
                      seq_start != nullptr && block_table_start != nullptr && block_table != nullptr,
                  "a pointer argument is NULL");
    status = check_pools(kv_dtype, k_cache, v_cache);
    if (status != LATHE_OK) return status;
    int sms = 0;
    LATHE_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, stream->device));
    const int64_t splits = lathe::paged_attention_splits(tokens, kv_heads, max_context, sms);
    lathe::PagedAttentionArgs args{out, q, k_cache, v_cache, positions, seq_start, block_table_start, block_table,
                                   tokens, seqs, heads, kv_heads, head_dim, block_size, num_blocks, scale,
                                   splits, (max_context + splits - 1) / splits, nullptr};
    if (splits == 1) {
        return lathe::launch_status(lathe::launch_paged_attention(kv_dtype, args, stream->stream),
                                    "paged_attention_kernel");
    }
    // NOTE: the stream's workspace (shared with the split-K GEMM; ops on one stream never overlap),
    // not cudaMallocAsync: a captured graph must find the same address at every launch.
    const size_t partial_bytes = sizeof(float) * (size_t)(tokens * heads * splits * (head_dim + 2));
    void* partial = nullptr;
    status = lathe::stream_scratch(stream, partial_bytes, &partial);
    if (status != LATHE_OK) return status;
    args.partial = static_cast<float*>(partial);
    return lathe::launch_status(lathe::launch_paged_attention(kv_dtype, args, stream->stream),
                                "paged_attention_kernel");
}

int32_t lathe_flash_prefill(lathe_stream* stream, int32_t kv_dtype, float* out, const float* q, const void* k_cache,
                            const void* v_cache, const int32_t* positions, const int32_t* seq_start,
                            const int32_t* block_table_start, const int32_t* block_table, int64_t tokens, int64_t seqs,
                            int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks,
                            int64_t max_seq_tokens, float scale) {
    // NOTE: the shape checks come before the stream, so that what the kernel does not support is
    // refused by name with or without a device (NullArgumentsTest calls this without a GPU).
    int32_t status = check_kv_dtype(kv_dtype);
    if (status != LATHE_OK) return status;
    LATHE_REQUIRE(tokens >= 0 && tokens <= 0x7fffffff, "tokens must be in [0, 2^31), got %lld", (long long)tokens);
    LATHE_REQUIRE(seqs > 0 || tokens == 0, "seqs must be positive when there are tokens, got %lld", (long long)seqs);
    LATHE_REQUIRE(seqs <= 65535, "seqs must be at most 65535 (grid.z), got %lld", (long long)seqs);
    LATHE_REQUIRE(heads > 0 && kv_heads > 0 && heads % kv_heads == 0,
                  "heads (%lld) must be a positive multiple of kv_heads (%lld)", (long long)heads, (long long)kv_heads);
    LATHE_REQUIRE(kv_heads <= 65535, "kv_heads must be at most 65535, got %lld", (long long)kv_heads);
    LATHE_REQUIRE(heads / kv_heads <= lathe::kFlashMaxGroup,
                  "flash prefill holds at most %d query heads per KV head in a tile, got %lld", lathe::kFlashMaxGroup,
                  (long long)(heads / kv_heads));
    LATHE_REQUIRE(lathe::flash_prefill_supports(head_dim),
                  "flash prefill has kernels for head_dim 64 and 128 only, got %lld (use lathe_paged_attention)",
                  (long long)head_dim);
    LATHE_REQUIRE(block_size > 0 && num_blocks > 0, "block_size=%lld num_blocks=%lld must be positive",
                  (long long)block_size, (long long)num_blocks);
    LATHE_REQUIRE(max_seq_tokens >= 1 && (tokens == 0 || max_seq_tokens <= tokens),
                  "max_seq_tokens must be in [1, tokens = %lld], got %lld", (long long)tokens, (long long)max_seq_tokens);
    LATHE_ENTER_STREAM(stream);
    if (tokens == 0) return LATHE_OK;
    LATHE_REQUIRE(out != nullptr && q != nullptr && k_cache != nullptr && v_cache != nullptr && positions != nullptr &&
                      seq_start != nullptr && block_table_start != nullptr && block_table != nullptr,
                  "a pointer argument is NULL");
    // NOTE: 16-byte vector loads of 8 values: rows start at multiples of 8 values (head_dim is 64
    // or 128), so 16-byte aligned bases suffice; device allocations are 256-byte aligned.
    LATHE_REQUIRE_ALIGNED(k_cache, 16, "k_cache");
    LATHE_REQUIRE_ALIGNED(v_cache, 16, "v_cache");
    LATHE_REQUIRE_ALIGNED(q, 16, "q");
    LATHE_REQUIRE_ALIGNED(out, 8, "out");
    const int64_t tiles = lathe::flash_prefill_tiles(max_seq_tokens, heads / kv_heads);
    LATHE_REQUIRE(tiles <= 0x7fffffff, "max_seq_tokens %lld needs too many tiles", (long long)max_seq_tokens);
    const lathe::FlashPrefillArgs args{out, q, k_cache, v_cache, positions, seq_start, block_table_start, block_table,
                                       tokens, seqs, heads, kv_heads, head_dim, block_size, num_blocks, scale};
    return lathe::launch_status(lathe::launch_flash_prefill(kv_dtype, args, tiles, stream->stream),
                                "flash_prefill_kernel");
}

}  // extern "C"
