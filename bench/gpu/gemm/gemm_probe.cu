// Times the tensor-core GEMM (kernels/quant/mma_gemm.cuh) straight from its header, beside cuBLAS
// FP16 in the same run, to see where its time goes. Rows per shape and token count:
//   F16, Q4_0  launch_mma_gemm as lathe_matmul calls it, over random data;
//   gemm       the staged kernel alone (33+ tokens), on F16 rows with x already in f16;
//   decode     dequant_f16_kernel alone: all rows of the Q4_0 weights to f16 (its FLOP/s column
//              is meaningless; us is what it adds).
// Usage: bench/gpu/gemm/run.sh (builds it on the GPU machine, where cuBLAS's headers are).
#if __has_include(<cublas_v2.h>)
#include <cublas_v2.h>
#define HAVE_CUBLAS 1
#endif
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../../../kernels/quant/mma_gemm.cuh"

#define CHECK(call)                                                                            \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            std::exit(1);                                                                      \
        }                                                                                      \
    } while (0)

template <class Launch>
static float median_us(Launch launch, cudaStream_t s) {
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) launch();
    std::vector<float> samples;
    for (int sample = 0; sample < 9; sample++) {
        CHECK(cudaEventRecord(a, s));
        for (int i = 0; i < 20; i++) launch();
        CHECK(cudaEventRecord(b, s));
        CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        samples.push_back(ms * 1000.0f / 20);
    }
    CHECK(cudaGetLastError());
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

int main() {
    int device = 0, sms = 0;
    CHECK(cudaGetDevice(&device));
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, device));
    std::printf("device %s, %d SMs\n", prop.name, sms);
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
#ifdef HAVE_CUBLAS
    cublasHandle_t cublas;
    if (cublasCreate(&cublas) != CUBLAS_STATUS_SUCCESS) { std::fprintf(stderr, "cublasCreate failed\n"); return 1; }
    cublasSetStream(cublas, s);
#endif

    const int64_t shapes[][2] = {{4096, 4096}, {14336, 4096}, {4096, 14336}};
    const int64_t token_counts[] = {8, 17, 32, 64, 128, 256};
    const int64_t max_elems = 14336LL * 4096;
    void* weights = nullptr;  // F16 [rows, cols], also read as Q4_0 values
    __half* scales = nullptr;
    float* x = nullptr;
    __half* xh = nullptr;
    float* out = nullptr;
    void* workspace = nullptr;
    CHECK(cudaMalloc(&weights, 2 * max_elems));
    CHECK(cudaMalloc(&scales, 2 * max_elems / 32));
    CHECK(cudaMalloc(&x, 4 * 256 * 14336));
    CHECK(cudaMalloc(&xh, 2 * 256 * 14336));
    CHECK(cudaMalloc(&out, 4 * 256 * 14336));
    CHECK(cudaMalloc(&workspace, 256 << 20));
    {
        std::vector<__half> h(max_elems);
        for (int64_t i = 0; i < max_elems; i++) h[i] = __float2half(((i * 2654435761LL) % 2001 - 1000) * 1e-4f);
        CHECK(cudaMemcpy(weights, h.data(), 2 * max_elems, cudaMemcpyHostToDevice));
        std::vector<__half> sc(max_elems / 32, __float2half(0.01f));
        CHECK(cudaMemcpy(scales, sc.data(), 2 * max_elems / 32, cudaMemcpyHostToDevice));
        std::vector<float> hx(256 * 14336);
        for (size_t i = 0; i < hx.size(); i++) hx[i] = ((i * 40503) % 2001 - 1000) * 1e-3f;
        CHECK(cudaMemcpy(x, hx.data(), 4 * hx.size(), cudaMemcpyHostToDevice));
        std::vector<__half> hxh(hx.size());
        for (size_t i = 0; i < hx.size(); i++) hxh[i] = __float2half(hx[i]);
        CHECK(cudaMemcpy(xh, hxh.data(), 2 * hxh.size(), cudaMemcpyHostToDevice));
    }
    std::printf("%-8s %-12s %5s %10s %8s %12s %8s\n", "weights", "shape", "T", "us", "TFLOP/s", "cuBLAS us", "ratio");
    for (const auto& shape : shapes) {
        const int64_t rows = shape[0], cols = shape[1];
        for (int64_t tokens : token_counts) {
            if (lathe::mma_workspace_bytes(rows, cols, tokens, false, sms) > (256u << 20)) { std::printf("workspace too small\n"); return 1; }
            // Column-major view: C [rows, tokens] = W [cols, rows]^T . x [cols, tokens].
            const float alpha = 1.0f, beta = 0.0f;
            #ifdef HAVE_CUBLAS
            const float cublas_us = median_us([&] {
                cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, rows, tokens, cols, &alpha, weights, CUDA_R_16F, cols, xh,
                             CUDA_R_16F, cols, &beta, out, CUDA_R_32F, rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            }, s);
#else
            (void)alpha, (void)beta;
            const float cublas_us = 0;  // no cuBLAS headers here: build on the GPU machine for the ratio
#endif
            const double flops = 2.0 * rows * cols * tokens;
            auto report = [&](const char* name, float us) {
                std::printf("%-8s %5lldx%-6lld %5lld %10.2f %8.2f %12.2f %7.2fx\n", name, (long long)rows, (long long)cols,
                            (long long)tokens, us, flops / us * 1e-6, cublas_us, cublas_us / us);
            };
            report("F16", median_us([&] {
                CHECK(lathe::launch_mma_gemm(lathe::GgmlTileSource<lathe::kWeightF16>{weights, nullptr, cols}, rows, cols, x,
                                             tokens, out, static_cast<float*>(workspace), sms, s));
            }, s));
            report("Q4_0", median_us([&] {
                CHECK(lathe::launch_mma_gemm(lathe::GgmlTileSource<lathe::kWeightQ4_0>{weights, scales, cols}, rows, cols,
                                             x, tokens, out, static_cast<float*>(workspace), sms, s));
            }, s));
            // The staged path's parts: the GEMM alone (F16 rows, x already f16), and the decode of Q4_0.
            const lathe::MmaPlan plan = lathe::MmaPlan::of(rows, cols, tokens, true, sms);
            if (plan.staged) {
                float* partials = reinterpret_cast<float*>(static_cast<char*>(workspace) + plan.x_half_bytes);
                const __half* w = static_cast<const __half*>(weights);
                report("gemm", median_us([&] {
                    CHECK(plan.bm == 32   ? lathe::launch_mma_gemm_staged<32>(plan, w, rows, cols, xh, tokens, out, rows, partials, sms, s)
                          : plan.bm == 64 ? lathe::launch_mma_gemm_staged<64>(plan, w, rows, cols, xh, tokens, out, rows, partials, sms, s)
                                          : lathe::launch_mma_gemm_staged<128>(plan, w, rows, cols, xh, tokens, out, rows, partials, sms, s));
                }, s));
                const lathe::GgmlTileSource<lathe::kWeightQ4_0> q4{weights, scales, cols};
                report("decode", median_us([&] {
                    const int64_t n = rows * (cols / 8);
                    lathe::dequant_f16_kernel<<<static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 16LL * sms)), 256, 0, s>>>(
                        q4, 0, rows, cols, static_cast<__half*>(workspace));
                }, s));
            }
        }
    }
    return 0;
}
