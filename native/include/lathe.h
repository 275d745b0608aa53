/*
 * lathe.h: the C ABI of liblathe_cuda.so, the CUDA half of Lathe (DESIGN.md, "Layout").
 *
 * Rules every function follows, so the Java bindings (bindings/) stay one plain downcall each:
 *   - extern "C", no C++ types, no structs passed by value; opaque handles for owned objects;
 *   - every function returns an int32_t lathe_status; on failure lathe_last_error() names the
 *     argument or the CUDA call that failed (the message is per calling thread);
 *   - sizes and counts are int64_t; device memory is passed as raw device pointers that the caller
 *     sub-allocates from lathe_buffer's (its device pool); host memory as plain pointers;
 *   - ops are enqueued on a lathe_stream and return before the device finishes, except the copies
 *     to host memory, which return once the data is there.
 * Layouts are row-major; "[a, b]" below means a rows of b elements.
 *
 * NOTE: bindings/src/test/.../HeaderBindingsTest parses this file: keep one declaration per
 * function, "LATHE_API int32_t name(args);" (args may span lines), parameter types only from
 * int32_t, int64_t, float, and pointers.
 */
#ifndef LATHE_H
#define LATHE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_API __attribute__((visibility("default")))

/* lathe_status values. */
#define LATHE_OK 0
#define LATHE_ERR_INVALID_ARGUMENT 1 /* a null handle, a bad size, a misaligned pointer */
#define LATHE_ERR_CUDA 2             /* a CUDA call failed; the message names it */
#define LATHE_ERR_NO_DEVICE 3        /* no driver, no device, or a device this build has no code for */
#define LATHE_ERR_OUT_OF_MEMORY 4
#define LATHE_ERR_UNSUPPORTED 5      /* a dtype or shape this build has no kernel for */

/* Weight formats the matmul and embedding kernels read (the "kernel layouts"; see
 * java/cuda/.../WeightRepacker for how ggml blocks are split into them). */
#define LATHE_WEIGHT_F32 0   /* values: float [rows, cols]; scales: unused (NULL) */
#define LATHE_WEIGHT_F16 1   /* values: half  [rows, cols]; scales: unused (NULL) */
#define LATHE_WEIGHT_BF16 2  /* values: bf16  [rows, cols]; scales: unused (NULL) */
#define LATHE_WEIGHT_Q8_0 3  /* values: int8 [rows, cols]; scales: half [rows, cols/32]; w = q * d */
#define LATHE_WEIGHT_Q4_0 4  /* values: uint8 [rows, cols/2], each group of 32 values is 16 bytes
                                whose low nibbles are values 0..15 and high nibbles 16..31 (ggml's
                                order); scales: half [rows, cols/32]; w = (q - 8) * d */
#define LATHE_WEIGHT_Q4_K 5  /* values: ggml block_q4_K [rows, cols/256], 144 bytes each, as in the
                                file (16-byte aligned when the matrix is); scales: unused (NULL) */
#define LATHE_WEIGHT_Q6_K 6  /* values: ggml block_q6_K [rows, cols/256], 210 bytes each, as in the
                                file; scales: unused (NULL) */
#define LATHE_WEIGHT_Q5_K 7  /* values: ggml block_q5_K [rows, cols/256], 176 bytes each, as in the
                                file (16-byte aligned when the matrix is); scales: unused (NULL) */

/* Element types of the paged K/V pools (dev.lathe.core.backend.KvDtype). K and V arrive as f32
 * and are stored rounded to nearest even (as the CPU backend stores them); attention widens them to
 * f32. A code that is none of these fails with LATHE_ERR_UNSUPPORTED naming it, checked before
 * anything else (so without a device too). */
#define LATHE_KV_F32 0  /* float, 4 bytes */
#define LATHE_KV_F16 1  /* IEEE half, 2 bytes */
#define LATHE_KV_BF16 2 /* bfloat16, 2 bytes */

/* RoPE pairings (dev.lathe.core.model.RopeStyle). */
#define LATHE_ROPE_INTERLEAVED 0 /* pair i is dims (2i, 2i+1) (GGUF / llama2.c) */
#define LATHE_ROPE_HALF_SPLIT 1  /* pair i is dims (i, i + headDim/2) (Hugging Face) */

typedef struct lathe_context lathe_context; /* one CUDA device, made current on the calling thread */
typedef struct lathe_stream lathe_stream;   /* an ordered queue of work on a context's device */
typedef struct lathe_buffer lathe_buffer;   /* one device allocation */
typedef struct lathe_event lathe_event;     /* a timing marker recorded on a stream */
typedef struct lathe_graph lathe_graph;     /* a captured, instantiated CUDA graph of a stream's work */

/* ---- errors and versions -------------------------------------------------------------- */

/* The message of the calling thread's last failure ("" when none); valid until its next call. */
LATHE_API const char* lathe_last_error(void);

/* This header's ABI version (LATHE_ABI_VERSION), to check the library matches the bindings. */
#define LATHE_ABI_VERSION 3 /* 2: K/V pools typed by a LATHE_KV_* code; 3: LATHE_WEIGHT_Q5_K */
LATHE_API int32_t lathe_abi_version(int32_t* version);

/* The CUDA driver's version (e.g. 13000), or 0 when no driver is installed (not an error). */
LATHE_API int32_t lathe_driver_version(int32_t* version);

/* The CUDA runtime this library was built with (e.g. 13000). */
LATHE_API int32_t lathe_runtime_version(int32_t* version);

/* Devices the driver sees; fails with LATHE_ERR_NO_DEVICE and the driver's reason when none. */
LATHE_API int32_t lathe_device_count(int32_t* count);

/* ---- context: device queries ---------------------------------------------------------- */

/* Opens device `device` (0-based); fails with LATHE_ERR_NO_DEVICE when this library holds no
 * code for its compute capability (built for sm_80, sm_86, sm_89, sm_90a + compute_90 PTX). */
LATHE_API int32_t lathe_context_create(int32_t device, lathe_context** out);
LATHE_API int32_t lathe_context_destroy(lathe_context* ctx);

/* The device's name, NUL-terminated, truncated to capacity - 1 bytes. */
LATHE_API int32_t lathe_device_name(lathe_context* ctx, char* name, int64_t capacity);
LATHE_API int32_t lathe_device_compute_capability(lathe_context* ctx, int32_t* major, int32_t* minor);
LATHE_API int32_t lathe_device_memory(lathe_context* ctx, int64_t* free_bytes, int64_t* total_bytes);
LATHE_API int32_t lathe_device_multiprocessors(lathe_context* ctx, int32_t* count);

/* ---- streams, buffers, copies, events ------------------------------------------------- */

LATHE_API int32_t lathe_stream_create(lathe_context* ctx, lathe_stream** out);
LATHE_API int32_t lathe_stream_destroy(lathe_stream* stream);
/* Waits for everything enqueued on the stream; reports an asynchronous kernel failure. */
LATHE_API int32_t lathe_stream_synchronize(lathe_stream* stream);

/* A device allocation of `bytes` (> 0), 256-byte aligned. */
LATHE_API int32_t lathe_buffer_alloc(lathe_context* ctx, int64_t bytes, lathe_buffer** out);
LATHE_API int32_t lathe_buffer_free(lathe_buffer* buffer);
/* The buffer's device address, to sub-allocate from. */
LATHE_API int32_t lathe_buffer_device_pointer(lathe_buffer* buffer, void** device_pointer);
LATHE_API int32_t lathe_buffer_size(lathe_buffer* buffer, int64_t* bytes);

/* Host -> device copy of `bytes`; pageable host memory may be reused as soon as the call returns.
 * From pinned memory (lathe_host_alloc) the copy is asynchronous: the memory must stay unchanged
 * until the stream reaches it; inside a graph capture only a pinned source can be recorded, and
 * each launch of the graph then reads whatever the pinned memory holds at that time. */
LATHE_API int32_t lathe_memcpy_h2d(lathe_stream* stream, void* device_dst, const void* host_src, int64_t bytes);
/* Device -> host copy of `bytes`; returns once the data is in host memory (synchronizes the stream). */
LATHE_API int32_t lathe_memcpy_d2h(lathe_stream* stream, void* host_dst, const void* device_src, int64_t bytes);
LATHE_API int32_t lathe_memcpy_d2d(lathe_stream* stream, void* device_dst, const void* device_src, int64_t bytes);
/* Sets `bytes` bytes of device memory to `value` (0..255). */
LATHE_API int32_t lathe_memset(lathe_stream* stream, void* device_dst, int32_t value, int64_t bytes);

LATHE_API int32_t lathe_event_create(lathe_context* ctx, lathe_event** out);
LATHE_API int32_t lathe_event_destroy(lathe_event* event);
LATHE_API int32_t lathe_event_record(lathe_event* event, lathe_stream* stream);
LATHE_API int32_t lathe_event_synchronize(lathe_event* event);
/* Milliseconds between two recorded events (waits for `end`). */
LATHE_API int32_t lathe_event_elapsed_ms(lathe_event* start, lathe_event* end, float* milliseconds);

/* ---- graphs: record a stream's work once, replay it with one launch ------------------------
 * Between begin and end capture the ops called on `stream` are recorded, not run (the stream's
 * workspace cannot grow meanwhile: an op that would need more fails with LATHE_ERR_UNSUPPORTED,
 * so run the same work once uncaptured first). A launch replays the recorded kernels with the
 * recorded arguments: every device address and size is fixed, only memory contents change. */
LATHE_API int32_t lathe_graph_begin_capture(lathe_stream* stream);
/* Ends the capture (always, even when this fails) and instantiates the graph. */
LATHE_API int32_t lathe_graph_end_capture(lathe_stream* stream, lathe_graph** out);
LATHE_API int32_t lathe_graph_launch(lathe_graph* graph, lathe_stream* stream);
/* Nodes (kernels, copies, memsets) the capture recorded. */
LATHE_API int32_t lathe_graph_node_count(lathe_graph* graph, int64_t* nodes);
/* Frees the graph; a launch already queued still runs. */
LATHE_API int32_t lathe_graph_destroy(lathe_graph* graph);

/* Pinned (page-locked) host memory of `bytes` (> 0), for copies a graph replays. */
LATHE_API int32_t lathe_host_alloc(lathe_context* ctx, int64_t bytes, void** out);
LATHE_API int32_t lathe_host_free(lathe_context* ctx, void* host);

/* ---- fused common ops (kernels/common) -------------------------------------------------- */

/* out[t, :] = dequant(table[tokens[t], :]) for t < n_tokens. Token ids must lie in [0, vocab):
 * the caller checks them on the host (an id outside writes NaN to its row, never reads outside). */
LATHE_API int32_t lathe_embed(lathe_stream* stream,
                              int32_t table_format,  /* LATHE_WEIGHT_* */
                              const void* table_values, /* [vocab, dim] in table_format */
                              const void* table_scales, /* [vocab, dim/32] half, Q8_0/Q4_0 only, else NULL */
                              int64_t vocab, int64_t dim,
                              const int32_t* tokens,    /* [n_tokens] device */
                              int64_t n_tokens,
                              float* out);              /* [n_tokens, dim] */

/* out[t, :] = x[t, :] * weight / sqrt(mean(x[t, :]^2) + eps); out may alias x. */
LATHE_API int32_t lathe_rmsnorm(lathe_stream* stream,
                                float* out,            /* [rows, cols] */
                                const float* x,        /* [rows, cols] */
                                const float* weight,   /* [cols] */
                                int64_t rows, int64_t cols, float eps);

/* x[t, :] += bias. */
LATHE_API int32_t lathe_add_bias(lathe_stream* stream, float* x /* [rows, cols] */,
                                 const float* bias /* [cols] */, int64_t rows, int64_t cols);

/* x += y over n elements. */
LATHE_API int32_t lathe_add(lathe_stream* stream, float* x, const float* y, int64_t n);

/* gate = silu(gate) * up over n elements. */
LATHE_API int32_t lathe_swiglu(lathe_stream* stream, float* gate, const float* up, int64_t n);

/* out[i, :] = x[rows[i], :]; rows must lie in [0, x_rows) (checked on the host by the caller). */
LATHE_API int32_t lathe_gather_rows(lathe_stream* stream,
                                    float* out,            /* [n_rows, cols] */
                                    const float* x,        /* [x_rows, cols] */
                                    const int32_t* rows,   /* [n_rows] device */
                                    int64_t n_rows, int64_t x_rows, int64_t cols);

/* Rotates every head of x in place: pair i of head h of token t turns by positions[t] * inv_freq[i]. */
LATHE_API int32_t lathe_rope(lathe_stream* stream,
                             float* x,                  /* [tokens, heads * head_dim] */
                             const int32_t* positions,  /* [tokens] device */
                             const float* inv_freq,     /* [head_dim / 2] device */
                             int64_t tokens, int64_t heads, int64_t head_dim,
                             int32_t style);            /* LATHE_ROPE_* */

/* out[r] = argmax_j x[r, j] (the first index on ties; NaN never wins). */
LATHE_API int32_t lathe_argmax(lathe_stream* stream, int32_t* out /* [rows] device */,
                               const float* x /* [rows, cols] */, int64_t rows, int64_t cols);

/* ---- dequant-matmul (kernels/quant) ----------------------------------------------------- */

/* out[t, r] = sum_i W[r, i] * x[t, i]: a GEMV that dequantizes W on the fly and reads each
 * weight once per group of up to 4 tokens. cols must be a multiple of 32 for Q8_0/Q4_0 and of
 * 256 for Q4_K/Q5_K/Q6_K. */
LATHE_API int32_t lathe_matmul(lathe_stream* stream,
                               int32_t weight_format,  /* LATHE_WEIGHT_* */
                               const void* weight_values, /* [rows, cols] in weight_format */
                               const void* weight_scales, /* [rows, cols/32] half, Q8_0/Q4_0 only */
                               int64_t rows, int64_t cols,
                               const float* x,         /* [tokens, cols] */
                               int64_t tokens,
                               float* out);            /* [tokens, rows] */

/* Group-wise INT4 (W4A16, GPTQ / AWQ model): W[r, i] = (q[r, i] - zero[r, i/group]) * scale[r, i/group]. */
LATHE_API int32_t lathe_matmul_int4(lathe_stream* stream,
                                    const void* qweight, /* uint32 [rows, cols/8]: value 8j+n in bits 4n..4n+3 of word j */
                                    const void* scales,  /* half [rows, cols/group] */
                                    const void* zeros,   /* uint8 [rows, cols/group], 0..15 */
                                    int64_t rows, int64_t cols,
                                    int64_t group,       /* 32, 64 or 128 */
                                    const float* x,      /* [tokens, cols], 16-byte aligned */
                                    int64_t tokens,
                                    float* out);         /* [tokens, rows] */

/* NF4 (QLoRA / bitsandbytes): W[r, i] = NF4[q[r, i]] * absmax[r, i/64], NF4 the NormalFloat-4 table. */
LATHE_API int32_t lathe_matmul_nf4(lathe_stream* stream,
                                   const void* qweight,  /* uint32 [rows, cols/8]: code 8j+n in bits 4n..4n+3 of word j */
                                   const float* absmax,  /* [rows, cols/64] */
                                   int64_t rows, int64_t cols,
                                   const float* x,       /* [tokens, cols], 16-byte aligned */
                                   int64_t tokens,
                                   float* out);          /* [tokens, rows] */

/* 2:4 structured-sparse FP16 (kernels/sparse): every group of 4 weights along a row keeps at most 2. */
LATHE_API int32_t lathe_matmul_sparse24(lathe_stream* stream,
                                        const void* values, /* half [rows, cols/2]: the kept weights, 16-byte aligned */
                                        const void* meta,   /* uint32 [rows, cols/32]: per group a nibble, bits 0-1 and
                                                               2-3 the columns (0..3) of its two kept weights */
                                        int64_t rows, int64_t cols, /* cols a multiple of 32 */
                                        const float* x,     /* [tokens, cols] */
                                        int64_t tokens,
                                        float* out);        /* [tokens, rows] */

/* The same product on the sparse tensor cores (mma.sp, kernels/sparse/sparse24_mma.cuh), for 8+
 * tokens, from the fragment-ordered layout java/cuda Sparse24MmaLayout builds from the one above. */
LATHE_API int32_t lathe_matmul_sparse24_mma(lathe_stream* stream,
                                            const void* fragments, /* uint32 [ceil(rows/16), cols/32, 32, 4], 16-byte aligned:
                                                                      each lane's m16n8k16 A fragment of kept halves */
                                            const void* meta,      /* uint32 [ceil(rows/16), cols/32, 16]: the metadata
                                                                      register of lanes 4g+0 and 4g+1 (selector 0) */
                                            int64_t rows, int64_t cols, /* cols a multiple of 64 */
                                            const float* x,        /* [tokens, cols], 16-byte aligned */
                                            int64_t tokens,
                                            float* out);           /* [tokens, rows] */

/* ---- paged attention (kernels/attention) ------------------------------------------------- */

/* Writes each new token's K and V row into its cache slot, in the pools' element type:
 * k_cache[slot_mapping[t], :] = kv_dtype(k[t, :]). */
LATHE_API int32_t lathe_write_kv(lathe_stream* stream,
                                 int32_t kv_dtype,           /* LATHE_KV_*: the pools' element type */
                                 void* k_cache,              /* [num_slots, row_values] of kv_dtype, element-aligned */
                                 void* v_cache,              /* [num_slots, row_values] of kv_dtype, element-aligned */
                                 const float* k,             /* [tokens, row_values] */
                                 const float* v,             /* [tokens, row_values] */
                                 const int32_t* slot_mapping, /* [tokens] device, in [0, num_slots) */
                                 int64_t tokens,
                                 int64_t row_values,         /* kv_heads * head_dim */
                                 int64_t num_slots);

/* Causal grouped-query attention of each new token over its sequence's cached K/V (itself
 * included): token t of sequence s (seq_start[s] <= t < seq_start[s+1]) attends to positions
 * 0..positions[t], whose slots are block_table[block_table_start[s] + p / block_size] * block_size
 * + p % block_size. Query head h reads KV head h / (heads / kv_heads). max_context must be at
 * least every token's window (max positions[t] + 1): when few (token, KV head) pairs cannot fill
 * the GPU it sizes the split of each window across blocks (flash-decoding), whose workspace is
 * the stream's workspace. Only max_context fixes the grid: windows are read from `positions`, so
 * a graph captured with a bound replays for any windows up to it. */
LATHE_API int32_t lathe_paged_attention(lathe_stream* stream,
                                        int32_t kv_dtype,            /* LATHE_KV_*: the pools' element type */
                                        float* out,                  /* [tokens, heads * head_dim] */
                                        const float* q,              /* [tokens, heads * head_dim] */
                                        const void* k_cache,         /* [num_blocks * block_size, kv_heads * head_dim]
                                                                        of kv_dtype, element-aligned */
                                        const void* v_cache,         /* same */
                                        const int32_t* positions,    /* [tokens] device */
                                        const int32_t* seq_start,    /* [seqs + 1] device, CSR */
                                        const int32_t* block_table_start, /* [seqs + 1] device, CSR */
                                        const int32_t* block_table,  /* [block_table_start[seqs]] device */
                                        int64_t tokens, int64_t seqs,
                                        int64_t heads, int64_t kv_heads, int64_t head_dim,
                                        int64_t block_size, int64_t num_blocks,
                                        int64_t max_context,
                                        float scale);

/* The same attention as lathe_paged_attention on the tensor cores (kernels/attention/
 * flash_prefill.cuh), for batches of prefill chunks: tiles of 64 query rows (new tokens x the
 * query heads of one KV head) walk their causal windows through the block table once per tile,
 * with f16 operands and f32 accumulation (the header bounds the error). head_dim must be 64 or
 * 128 and heads / kv_heads at most 64 (LATHE_ERR_INVALID_ARGUMENT names which, so the caller
 * runs lathe_paged_attention instead); the pools, q and out 16-, 16- and 8-byte aligned.
 * max_seq_tokens is the most new tokens of any sequence (it sizes the grid); a sequence with more
 * gets NaN in the rows the grid does not reach. */
LATHE_API int32_t lathe_flash_prefill(lathe_stream* stream,
                                      int32_t kv_dtype,            /* LATHE_KV_*: the pools' element type */
                                      float* out,                  /* [tokens, heads * head_dim] */
                                      const float* q,              /* [tokens, heads * head_dim] */
                                      const void* k_cache,         /* [num_blocks * block_size, kv_heads * head_dim]
                                                                      of kv_dtype */
                                      const void* v_cache,         /* same */
                                      const int32_t* positions,    /* [tokens] device */
                                      const int32_t* seq_start,    /* [seqs + 1] device, CSR */
                                      const int32_t* block_table_start, /* [seqs + 1] device, CSR */
                                      const int32_t* block_table,  /* [block_table_start[seqs]] device */
                                      int64_t tokens, int64_t seqs,
                                      int64_t heads, int64_t kv_heads, int64_t head_dim,
                                      int64_t block_size, int64_t num_blocks,
                                      int64_t max_seq_tokens,
                                      float scale);

/* ---- speculative verification (kernels/spec) --------------------------------------------- */

/* For each of `batch` sequences with k draft tokens: keeps the longest accepted prefix of drafts
 * under the lossless rejection rule and samples the token after it (kernels/spec/verify.cuh says
 * how: temperature, top-k, top-p, then the rule, with Philox4x32-10 uniforms keyed by seeds[s]
 * and counter (offsets[s], position, 0)). temperature 0 is greedy; top_k 0 and top_p 1 are off. */
LATHE_API int32_t lathe_spec_verify(lathe_stream* stream,
                                    const float* target_logits, /* [batch * (k + 1), vocab] */
                                    const float* draft_probs,   /* [batch * k, vocab] (unused when greedy) */
                                    const int32_t* draft_tokens, /* [batch, k] */
                                    const int64_t* seeds,       /* [batch] device */
                                    const int64_t* offsets,     /* [batch] device: Philox counter base */
                                    int32_t* accepted,          /* [batch] out: drafts kept, 0..k */
                                    int32_t* next_token,        /* [batch] out: the next token */
                                    float* scratch,             /* [batch, vocab] workspace */
                                    int64_t batch, int64_t k, int64_t vocab,
                                    float temperature, int32_t top_k, float top_p);

/* ---- baseline (benchmarks only) ---------------------------------------------------------- */

/* out = x . W^T through cuBLAS (cublasGemmEx, FP16 inputs, FP32 accumulate and output), the
 * baseline the kernel benchmarks report against. cuBLAS is opened with dlopen on first use
 * ($LATHE_CUBLAS_LIB, else libcublas.so.13): LATHE_ERR_UNSUPPORTED with the reason when absent. */
LATHE_API int32_t lathe_cublas_gemm_f16(lathe_stream* stream,
                                        const void* weight,  /* half [rows, cols] */
                                        const void* x,       /* half [tokens, cols] */
                                        float* out,          /* [tokens, rows] */
                                        int64_t rows, int64_t cols, int64_t tokens);

#ifdef __cplusplus
}
#endif

#endif /* LATHE_H */
