// Weight formats as the kernels read them (lathe.h, LATHE_WEIGHT_*), and a scalar reader used by
// the kernels that touch few weights (embedding gather). The GEMV in quant/gemv.cuh has its own
// vectorized readers of the same layouts.
//
// Layouts, all row-major [rows, cols]:
//   F32, F16, BF16: the values;
//   Q8_0: values int8 [rows, cols]; scales half [rows, cols/32]; w = q * d;
//   Q4_0: values uint8 [rows, cols/2], 16 bytes per group of 32: byte j's low nibble is value j,
//         its high nibble value j + 16 (ggml's order); scales half [rows, cols/32]; w = (q - 8) * d.
// NOTE: ggml interleaves each group's f16 scale with its quants (18- and 34-byte blocks, only
// 2-byte aligned); the Java side (WeightRepacker) splits them once at upload so quants load in
// aligned 16-byte vectors and scales sit in their own array.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace lathe {

constexpr int kWeightF32 = 0;
constexpr int kWeightF16 = 1;
constexpr int kWeightBf16 = 2;
constexpr int kWeightQ8_0 = 3;
constexpr int kWeightQ4_0 = 4;
constexpr int kQuantGroup = 32;  // values per Q8_0 / Q4_0 scale

// W[row, col] as float, for any format; `values` and `scales` as in the table above.
__device__ __forceinline__ float load_weight(int format, const void* values, const __half* scales,
                                             int64_t row, int64_t col, int64_t cols) {
    const int64_t index = row * cols + col;
    switch (format) {
        case kWeightF32:
            return static_cast<const float*>(values)[index];
        case kWeightF16:
            return __half2float(static_cast<const __half*>(values)[index]);
        case kWeightBf16:
            return __bfloat162float(static_cast<const __nv_bfloat16*>(values)[index]);
        case kWeightQ8_0: {
            const float d = __half2float(scales[row * (cols / kQuantGroup) + col / kQuantGroup]);
            return static_cast<const int8_t*>(values)[index] * d;
        }
        case kWeightQ4_0: {
            const float d = __half2float(scales[row * (cols / kQuantGroup) + col / kQuantGroup]);
            const int64_t group = col / kQuantGroup;
            const int within = static_cast<int>(col % kQuantGroup);
            const uint8_t packed =
                static_cast<const uint8_t*>(values)[row * (cols / 2) + group * 16 + (within & 15)];
            const int q = within < 16 ? (packed & 0x0F) : (packed >> 4);
            return (q - 8) * d;
        }
        default:
            return __int_as_float(0x7fc00000);  // NaN: the entry points reject unknown formats first
    }
}

}  // namespace lathe
