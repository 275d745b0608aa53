// Weight formats as the kernels read them (lathe.h, LATHE_WEIGHT_*), and a scalar reader used by
// the kernels that touch few weights (embedding gather). The GEMV in quant/gemv.cuh has its own
// vectorized readers of the same layouts.
//
// Layouts, all row-major [rows, cols]:
//   F32, F16, BF16: the values;
//   Q8_0: values int8 [rows, cols]; scales half [rows, cols/32]; w = q * d;
//   Q4_0: values uint8 [rows, cols/2], 16 bytes per group of 32: byte j's low nibble is value j,
//         its high nibble value j + 16 (ggml's order); scales half [rows, cols/32]; w = (q - 8) * d;
//   Q4_K: ggml block_q4_K, 144 bytes per 256 values: half d, half dmin, 12 bytes of 6-bit scales
//         and mins for the 8 sub-blocks of 32, then 128 bytes of nibbles: byte 32c + l holds
//         value 64c + l (low nibble) and 64c + 32 + l (high); w = d * sc[j] * q - dmin * m[j];
//   Q6_K: ggml block_q6_K, 210 bytes per 256 values: ql[128] (low 4 bits), qh[64] (high 2 bits),
//         int8 scales[16] (one per 16 values), half d; w = d * scale * (q - 32);
//   Q5_K: ggml block_q5_K, 176 bytes per 256 values: Q4_K's d, dmin and scales, then qh[32] (bit j
//         of qh[l]: the fifth bit of sub-block j's value l) and qs[128] as Q4_K's nibbles;
//         w = d * sc[j] * q - dmin * m[j], q in 0..31.
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
constexpr int kWeightQ4_K = 5;
constexpr int kWeightQ6_K = 6;
constexpr int kWeightQ5_K = 7;
constexpr int kQuantGroup = 32;  // values per Q8_0 / Q4_0 scale
constexpr int kSuperBlock = 256; // values per K-quant block
constexpr int kQ4KBlockBytes = 144;
constexpr int kQ6KBlockBytes = 210;
constexpr int kQ5KBlockBytes = 176;

__device__ __forceinline__ float half_at(const uint8_t* p) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(p[0] | (p[1] << 8))));
}

// Sub-block j's 6-bit scale and min of a Q4_K block (ggml's get_scale_min_k4).
__device__ __forceinline__ void q4k_scale_min(const uint8_t* scales, int j, int& scale, int& min) {
    if (j < 4) {
        scale = scales[j] & 63;
        min = scales[j + 4] & 63;
    } else {
        scale = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

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
        case kWeightQ4_K: {
            const uint8_t* block = static_cast<const uint8_t*>(values) +
                                   (row * (cols / kSuperBlock) + col / kSuperBlock) * kQ4KBlockBytes;
            const int v = static_cast<int>(col % kSuperBlock);
            const int chunk = v / 64, high = (v % 64) / 32, l = v % 32;
            int sc, m;
            q4k_scale_min(block + 4, 2 * chunk + high, sc, m);
            const uint8_t packed = block[16 + 32 * chunk + l];
            const int q = high ? packed >> 4 : packed & 0x0F;
            return half_at(block) * sc * q - half_at(block + 2) * m;
        }
        case kWeightQ5_K: {
            const uint8_t* block = static_cast<const uint8_t*>(values) +
                                   (row * (cols / kSuperBlock) + col / kSuperBlock) * kQ5KBlockBytes;
            const int v = static_cast<int>(col % kSuperBlock);
            const int chunk = v / 64, high = (v % 64) / 32, l = v % 32;
            int sc, m;
            q4k_scale_min(block + 4, 2 * chunk + high, sc, m);
            const uint8_t packed = block[48 + 32 * chunk + l];
            const int q = (high ? packed >> 4 : packed & 0x0F) | (((block[16 + l] >> (2 * chunk + high)) & 1) << 4);
            return half_at(block) * sc * q - half_at(block + 2) * m;
        }
        case kWeightQ6_K: {
            const uint8_t* block = static_cast<const uint8_t*>(values) +
                                   (row * (cols / kSuperBlock) + col / kSuperBlock) * kQ6KBlockBytes;
            const int v = static_cast<int>(col % kSuperBlock);
            const int h = v / 128, k = (v % 128) / 32, l = v % 32;
            const uint8_t low = block[64 * h + (k & 1) * 32 + l];
            const int low_bits = k >= 2 ? low >> 4 : low & 0x0F;
            const int q = low_bits | (((block[128 + 32 * h + l] >> (2 * k)) & 3) << 4);
            const int scale = static_cast<int8_t>(block[192 + 8 * h + l / 16 + 2 * k]);
            return half_at(block + 208) * scale * (q - 32);
        }
        default:
            return __int_as_float(0x7fc00000);  // NaN: the entry points reject unknown formats first
    }
}

}  // namespace lathe
