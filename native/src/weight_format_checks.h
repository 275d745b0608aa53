// Argument checks shared by the entry points that read weights in a LATHE_WEIGHT_* layout.
#pragma once

#include "status.h"

namespace lathe {

inline int32_t check_weight_format(const char* what, int32_t format, const void* values, const void* scales,
                                   int64_t rows, int64_t cols) {
    LATHE_REQUIRE(format >= LATHE_WEIGHT_F32 && format <= LATHE_WEIGHT_Q5_K,
                  "%s: unknown weight format %d (expected LATHE_WEIGHT_F32..LATHE_WEIGHT_Q5_K)", what, format);
    if (format == LATHE_WEIGHT_Q4_K || format == LATHE_WEIGHT_Q5_K || format == LATHE_WEIGHT_Q6_K) {
        LATHE_REQUIRE(cols % 256 == 0, "%s: K-quant rows must hold whole blocks of 256 values, got cols=%lld",
                      what, (long long)cols);
    }
    LATHE_REQUIRE(values != nullptr, "%s: values pointer is NULL", what);
    const bool quantized = format == LATHE_WEIGHT_Q8_0 || format == LATHE_WEIGHT_Q4_0;
    if (quantized) {
        LATHE_REQUIRE(scales != nullptr, "%s: format %d needs a scales pointer", what, format);
        LATHE_REQUIRE(cols % 32 == 0, "%s: Q8_0/Q4_0 rows must hold whole groups of 32 values, got cols=%lld", what,
                      (long long)cols);
        LATHE_REQUIRE_ALIGNED(scales, 2, "scales");
    }
    const int element_alignment = format == LATHE_WEIGHT_F32                                    ? 4
                                  : (format == LATHE_WEIGHT_F16 || format == LATHE_WEIGHT_BF16) ? 2
                                  : (format == LATHE_WEIGHT_Q4_K || format == LATHE_WEIGHT_Q5_K) ? 8
                                                                                                 : 1;
    LATHE_REQUIRE_ALIGNED(values, element_alignment, "values");
    (void)rows;
    return LATHE_OK;
}

}  // namespace lathe
