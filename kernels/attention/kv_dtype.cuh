// Element types of the paged K/V pools (f32, f16, bf16) and how a value enters and leaves them.
//
// The kernels that touch the pools (kv_write.cuh, paged_attention.cuh) are templated on the
// element type T and do all arithmetic in f32: kv_narrow<T> on write, kv_widen on read.
// The rounding matches the CPU backend's (java/core HalfRows: Float.floatToFloat16 and
// Bf16Matrix.toBf16, both nearest even), so a CPU and a GPU cache fed the same K/V hold the same
// values and attention over them differs only by f32 summation order.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace lathe {

// The pool dtype codes of lathe.h (LATHE_KV_*), mirrored here so kernels/ needs no native/ header.
constexpr int32_t kKvF32 = 0;
constexpr int32_t kKvF16 = 1;
constexpr int32_t kKvBf16 = 2;

// Bytes per stored value for a code, 0 for a code that is not one.
inline int64_t kv_dtype_bytes(int32_t code) {
    return code == kKvF32 ? 4 : (code == kKvF16 || code == kKvBf16) ? 2 : 0;
}

__device__ __forceinline__ float kv_widen(float x) { return x; }
__device__ __forceinline__ float kv_widen(__half x) { return __half2float(x); }
// bf16 is the top half of an f32: widening is a shift.
__device__ __forceinline__ float kv_widen(__nv_bfloat16 x) {
    return __uint_as_float(static_cast<uint32_t>(__bfloat16_as_ushort(x)) << 16);
}

template <typename T>
__device__ __forceinline__ T kv_narrow(float x);

template <>
__device__ __forceinline__ float kv_narrow<float>(float x) { return x; }

// cvt.rn.f16.f32: IEEE nearest even, subnormals kept, overflow to infinity, as Float.floatToFloat16.
// NOTE: a NaN becomes the canonical f16 NaN here while Java keeps the payload's top bits: both are
// NaN and attention over either is NaN, so only the bit patterns of NaNs differ.
template <>
__device__ __forceinline__ __half kv_narrow<__half>(float x) { return __float2half_rn(x); }

// NOTE: the bit formula of Bf16Matrix.toBf16 (ggml's fp32 -> bf16) rather than
// __float2bfloat16_rn: the same nearest-even rounding, and NaNs also come out bit-identical
// (quiet, payload kept) where cvt.rn.bf16.f32 would give the canonical NaN.
template <>
__device__ __forceinline__ __nv_bfloat16 kv_narrow<__nv_bfloat16>(float x) {
    const uint32_t bits = __float_as_uint(x);
    const uint32_t rounded = (bits & 0x7fffffffu) > 0x7f800000u ? (bits >> 16) | 0x40u
                                                                 : (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    return __ushort_as_bfloat16(static_cast<unsigned short>(rounded));
}

}  // namespace lathe
