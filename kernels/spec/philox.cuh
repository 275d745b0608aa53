// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so draw n of a request is a pure function of (seed, counter) and runs
// repeat exactly, on any device and in the Java reference (dev.lathe.cuda.Philox), whatever the
// batch or launch shape.
#pragma once

#include <stdint.h>

namespace lathe {

struct Philox4 {
    uint32_t v[4];
};

__host__ __device__ __forceinline__ Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                         uint32_t k0, uint32_t k1) {
    const uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    const uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    for (int round = 0; round < 10; round++) {  // fully unrolled by nvcc at -O3
        if (round > 0) {
            k0 += w0;
            k1 += w1;
        }
        const uint64_t p0 = static_cast<uint64_t>(m0) * c0;
        const uint64_t p1 = static_cast<uint64_t>(m1) * c2;
        const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
        const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
        const uint32_t n0 = hi1 ^ c1 ^ k0;
        const uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    return Philox4{{c0, c1, c2, c3}};
}

// A uniform float in [0, 1) from the top 24 bits of a word (exact in f32).
__host__ __device__ __forceinline__ float philox_uniform(uint32_t word) {
    return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

}  // namespace lathe
