// Speculative verification: for each sequence, k draft tokens with the draft's probabilities and
// the target's logits at the k+1 positions; the lossless rejection rule (Leviathan et al. 2023,
// Chen et al. 2023) decides how many drafts to keep and samples the next token.
//
// Per sequence (one 256-thread block), position i = 0, 1, ...:
//   p = the target's distribution at i: softmax(logits / T), then top-k (keep logits >= the k-th
//       largest, ties kept), then top-p (keep the smallest set of most likely tokens whose mass
//       reaches top_p, ties kept), renormalized; T = 0 means greedy (p one-hot at the argmax,
//       lowest index on ties);
//   i < k: accept draft x_i when u_i * q(x_i) < p(x_i) (u_i uniform in [0,1)); else sample the
//       next token from max(0, p - q) (normalized; from p when that is all zero) and stop;
//   all k accepted: sample the next token from p at position k.
// Uniforms come from Philox4x32-10 keyed by the sequence's seed with counter
// (offset_lo, offset_hi, i, 0): word 0 is u_i, word 1 drives the sampling at i.
// Thresholds (the k-th largest logit, the top-p probability cut) are found exactly by a bitwise
// search over the order-preserving integer image of the floats: 32 passes over the row.
// Roofline: reads (k+1) rows of logits and k rows of draft probabilities, ~34 passes each through
// L1/L2 for top-k/top-p (a 128k vocabulary is 512 KB per row): a few tens of microseconds per
// sequence; negligible next to the k+1-token target forward it verifies.
// Variants: 1. block per sequence, threshold bit-search, block scans for sampling (this file).
#pragma once

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "../common/reduce.cuh"
#include "philox.cuh"

namespace lathe {

constexpr int kVerifyThreads = 256;

struct SpecVerifyArgs {
    const float* target_logits;   // [batch * (k + 1), vocab]
    const float* draft_probs;     // [batch * k, vocab]
    const int32_t* draft_tokens;  // [batch, k]
    const int64_t* seeds;         // [batch]
    const int64_t* offsets;       // [batch] Philox counter base, advanced by the caller per step
    int32_t* accepted;            // [batch] drafts kept, 0..k
    int32_t* next_token;          // [batch] the token after the kept drafts
    float* scratch;               // [batch, vocab] the current p
    int64_t batch, k, vocab;
    float temperature;
    int32_t top_k;
    float top_p;
};

// Float -> uint32 preserving order (negative floats reversed), and back.
__device__ __forceinline__ uint32_t ordered_bits(float f) {
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_ordered_bits(uint32_t u) {
    return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

__device__ float block_max(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : -INFINITY;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The lowest index holding the row's largest value (NaN never wins).
__device__ int64_t block_argmax(const float* row, int64_t n, float* scratch_f, int64_t* scratch_i) {
    float best = -INFINITY;
    int64_t best_i = n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = row[i];
        if (v > best || (v == best && i < best_i)) { best = v; best_i = i; }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int64_t i = __shfl_xor_sync(0xffffffffu, best_i, o);
        if (v > best || (v == best && i < best_i)) { best = v; best_i = i; }
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) { scratch_f[threadIdx.x >> 5] = best; scratch_i[threadIdx.x >> 5] = best_i; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++) {
            if (scratch_f[w] > best || (scratch_f[w] == best && scratch_i[w] < best_i)) { best = scratch_f[w]; best_i = scratch_i[w]; }
        }
        scratch_i[0] = best_i < n ? best_i : 0;
    }
    __syncthreads();
    const int64_t result = scratch_i[0];
    __syncthreads();
    return result;
}

// The largest v with count(row[i] >= v) >= need (or sum of row[i] where row[i] >= v >= need when
// MASS): found bit by bit from the top of the ordered-integer image.
template <bool MASS>
__device__ float threshold_search(const float* row, int64_t n, float need, float* scratch) {
    uint32_t prefix = 0;
    for (int bit = 31; bit >= 0; bit--) {
        const uint32_t candidate = prefix | (1u << bit);
        const float t = from_ordered_bits(candidate);
        float local = 0.0f;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            const float v = row[i];
            if (v >= t) local += MASS ? v : 1.0f;
        }
        if (block_sum(local, scratch) >= need) prefix = candidate;
    }
    return from_ordered_bits(prefix);
}

// Index of the first token whose inclusive prefix sum of w exceeds target (the last token with
// w > 0 when rounding leaves target unreached). Each thread owns a contiguous chunk of the row.
__device__ int64_t block_sample(const float* w, int64_t n, float target, float* chunk_sums, int64_t* result) {
    const int64_t per = (n + blockDim.x - 1) / blockDim.x;
    const int64_t begin = threadIdx.x * per;
    const int64_t end = begin + per < n ? begin + per : n;
    float s = 0.0f;
    for (int64_t i = begin; i < end; i++) s += w[i];
    __syncthreads();
    chunk_sums[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float acc = 0.0f;
        int64_t chosen = -1, last_positive = 0;
        for (int t = 0; t < (int)blockDim.x && chosen < 0; t++) {
            const int64_t b = t * per, e = b + per < n ? b + per : n;
            if (acc + chunk_sums[t] > target) {
                for (int64_t i = b; i < e; i++) {
                    if (w[i] > 0.0f) last_positive = i;
                    acc += w[i];
                    if (acc > target) { chosen = i; break; }
                }
                if (chosen < 0) chosen = last_positive;  // rounding: the chunk's walk fell short
            } else {
                acc += chunk_sums[t];
                for (int64_t i = e - 1; i >= b && chunk_sums[t] > 0.0f; i--) {
                    if (w[i] > 0.0f) { last_positive = i; break; }
                }
            }
        }
        *result = chosen >= 0 ? chosen : last_positive;
    }
    __syncthreads();
    const int64_t r = *result;
    __syncthreads();
    return r;
}

// Writes the target's filtered, normalized distribution (temperature > 0) for `logits` into p.
__device__ void target_distribution(const SpecVerifyArgs& a, const float* logits, float* p, float* scratch) {
    const int64_t n = a.vocab;
    float row_max = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) row_max = fmaxf(row_max, logits[i]);
    row_max = block_max(row_max, scratch);
    // top-k: the k-th largest logit (ties kept).
    float logit_cut = -INFINITY;
    if (a.top_k > 0 && a.top_k < n) logit_cut = threshold_search<false>(logits, n, static_cast<float>(a.top_k), scratch);
    float total = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float l = logits[i];
        const float e = l >= logit_cut ? expf((l - row_max) / a.temperature) : 0.0f;
        p[i] = e;
        total += e;
    }
    total = block_sum(total, scratch);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) p[i] /= total;
    __syncthreads();
    if (a.top_p < 1.0f) {
        const float prob_cut = threshold_search<true>(p, n, a.top_p, scratch);
        float kept = 0.0f;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            if (p[i] < prob_cut) p[i] = 0.0f;
            kept += p[i];
        }
        kept = block_sum(kept, scratch);
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) p[i] /= kept;
        __syncthreads();
    }
}

__global__ void __launch_bounds__(kVerifyThreads) spec_verify_kernel(SpecVerifyArgs a) {
    __shared__ float scratch[kVerifyThreads];
    __shared__ int64_t scratch_i[32];
    const int64_t s = blockIdx.x;
    const int64_t n = a.vocab;
    const uint64_t seed = static_cast<uint64_t>(a.seeds[s]);
    const uint64_t offset = static_cast<uint64_t>(a.offsets[s]);
    float* p = a.scratch + s * n;
    const bool greedy = !(a.temperature > 0.0f);
    int32_t accepted = 0;
    int64_t next = -1;
    for (int64_t i = 0; i <= a.k && next < 0; i++) {
        const float* logits = a.target_logits + (s * (a.k + 1) + i) * n;
        const Philox4 r = philox4x32_10(static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
                                        static_cast<uint32_t>(i), 0u, static_cast<uint32_t>(seed),
                                        static_cast<uint32_t>(seed >> 32));
        if (greedy) {
            const int64_t best = block_argmax(logits, n, scratch, scratch_i);
            if (i < a.k && a.draft_tokens[s * a.k + i] == best) {
                accepted++;
            } else {
                next = best;
            }
            continue;
        }
        target_distribution(a, logits, p, scratch);
        if (i < a.k) {
            const int32_t x = a.draft_tokens[s * a.k + i];
            const float* q = a.draft_probs + (s * a.k + i) * n;
            const float px = (x >= 0 && x < n) ? p[x] : 0.0f;
            const float qx = (x >= 0 && x < n) ? q[x] : 0.0f;
            if (philox_uniform(r.v[0]) * qx < px) {
                accepted++;
                continue;
            }
            // Residual max(0, p - q), in place.
            float mass = 0.0f;
            for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
                const float d = fmaxf(p[j] - q[j], 0.0f);
                p[j] = d;
                mass += d;
            }
            mass = block_sum(mass, scratch);
            if (mass <= 0.0f) target_distribution(a, logits, p, scratch), mass = 1.0f;
            next = block_sample(p, n, philox_uniform(r.v[1]) * mass, scratch, scratch_i);
        } else {
            next = block_sample(p, n, philox_uniform(r.v[1]), scratch, scratch_i);
        }
    }
    if (threadIdx.x == 0) {
        a.accepted[s] = accepted;
        a.next_token[s] = static_cast<int32_t>(next);
    }
}

inline cudaError_t launch_spec_verify(const SpecVerifyArgs& a, cudaStream_t stream) {
    spec_verify_kernel<<<static_cast<unsigned>(a.batch), kVerifyThreads, 0, stream>>>(a);
    return cudaGetLastError();
}

}  // namespace lathe
