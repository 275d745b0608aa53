// Grid sizing shared by the grid-stride element-wise kernels.
#pragma once

#include <stdint.h>

namespace lathe {

constexpr int kElementwiseThreads = 256;

inline int elementwise_blocks(int64_t n) {
    int64_t blocks = (n + kElementwiseThreads - 1) / kElementwiseThreads;
    // NOTE: capped so the grid fits any device; the kernels stride over the rest.
    return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace lathe
