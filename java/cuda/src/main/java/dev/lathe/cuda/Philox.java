package dev.lathe.cuda;

/**
 * Philox4x32-10 (Salmon et al., SC'11), the counter-based generator of the speculative
 * verification kernel (kernels/spec/philox.cuh), in Java: the same (seed, counter) gives the same
 * four words on the CPU and the GPU, so a request's random stream repeats anywhere.
 */
public final class Philox {
    private static final long M0 = 0xD2511F53L;
    private static final long M1 = 0xCD9E8D57L;
    private static final int W0 = 0x9E3779B9;
    private static final int W1 = 0xBB67AE85;

    private Philox() {
    }

    /** The 4 output words for counter {@code (c0, c1, c2, c3)} and key {@code (k0, k1)}. */
    public static int[] philox4x32_10(int c0, int c1, int c2, int c3, int k0, int k1) {
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                k0 += W0;
                k1 += W1;
            }
            long p0 = M0 * (c0 & 0xFFFFFFFFL);
            long p1 = M1 * (c2 & 0xFFFFFFFFL);
            int n0 = (int) (p1 >>> 32) ^ c1 ^ k0;
            int n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
            c0 = n0;
            c1 = (int) p1;
            c2 = n2;
            c3 = (int) p0;
        }
        return new int[] {c0, c1, c2, c3};
    }

    /** A uniform float in [0, 1) from the top 24 bits of {@code word} (exact in f32). */
    public static float uniform(int word) {
        return (word >>> 8) * (1.0f / 16777216.0f);
    }

    /** The draw the verifier uses at {@code position} of a sequence: seed as key, (offset, position, 0) as counter. */
    public static int[] draw(long seed, long offset, int position) {
        return philox4x32_10((int) offset, (int) (offset >>> 32), position, 0, (int) seed, (int) (seed >>> 32));
    }
}
