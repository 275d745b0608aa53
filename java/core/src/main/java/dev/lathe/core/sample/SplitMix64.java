package dev.lathe.core.sample;

/**
 * Steele, Lea and Flood's SplitMix64: a 64-bit counter passed through a fixed mixing function.
 * Any seed, 0 included, gives a full-period stream.
 */
final class SplitMix64 {
    // NOTE: written out instead of java.util.SplittableRandom so that the stream is fixed by this
    // file, not by a JDK version: the same seed must give the same tokens on every JVM.
    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    private long state;

    SplitMix64(long seed) {
        this.state = seed;
    }

    long nextLong() {
        long z = (state += GOLDEN_GAMMA);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1), 53 random bits. */
    double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }
}
