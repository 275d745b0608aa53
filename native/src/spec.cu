// Entry point of speculative verification (kernels/spec/verify.cuh).
#include "../../kernels/spec/verify.cuh"
#include "handles.h"

extern "C" int32_t lathe_spec_verify(lathe_stream* stream, const float* target_logits, const float* draft_probs,
                                     const int32_t* draft_tokens, const int64_t* seeds, const int64_t* offsets,
                                     int32_t* accepted, int32_t* next_token, float* scratch, int64_t batch, int64_t k,
                                     int64_t vocab, float temperature, int32_t top_k, float top_p) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(batch >= 0 && batch <= 0x7fffffff, "batch must be in [0, 2^31), got %lld", (long long)batch);
    LATHE_REQUIRE(k >= 0 && k <= 64, "k (draft tokens per sequence) must be in [0, 64], got %lld", (long long)k);
    LATHE_REQUIRE(vocab > 0 && vocab <= 0x7fffffff, "vocab must be in [1, 2^31), got %lld", (long long)vocab);
    LATHE_REQUIRE(temperature >= 0.0f && temperature == temperature, "temperature must be >= 0, got %g", temperature);
    LATHE_REQUIRE(top_k >= 0, "top_k must be >= 0 (0 = off), got %d", top_k);
    LATHE_REQUIRE(top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1], got %g", top_p);
    if (batch == 0) return LATHE_OK;
    LATHE_REQUIRE(target_logits != nullptr && draft_tokens != nullptr && seeds != nullptr && offsets != nullptr &&
                      accepted != nullptr && next_token != nullptr && scratch != nullptr,
                  "a pointer argument is NULL");
    LATHE_REQUIRE(draft_probs != nullptr || k == 0 || temperature == 0.0f,
                  "draft_probs is NULL but sampling (temperature > 0) needs it");
    LATHE_REQUIRE_ALIGNED(seeds, 8, "seeds");
    LATHE_REQUIRE_ALIGNED(offsets, 8, "offsets");
    lathe::SpecVerifyArgs args{target_logits, draft_probs, draft_tokens, seeds, offsets, accepted, next_token,
                               scratch, batch, k, vocab, temperature, top_k, top_p};
    return lathe::launch_status(lathe::launch_spec_verify(args, stream->stream), "spec_verify_kernel");
}
