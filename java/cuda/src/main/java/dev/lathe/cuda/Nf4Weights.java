package dev.lathe.cuda;

/**
 * An NF4 weight (QLoRA / bitsandbytes NormalFloat-4) in the kernel layout of
 * kernels/quant/int4_gemv.cuh: {@code W[r, i] = CODEBOOK[q[r, i]] * absmax[r, i / 64]}.
 *
 * @param rows    output features
 * @param cols    input features, a multiple of 64
 * @param qweight {@code [rows, cols/8]}: word j of a row holds codes 8j .. 8j+7, code 8j+n in bits 4n .. 4n+3
 * @param absmax  {@code [rows, cols/64]} each block's largest magnitude
 */
public record Nf4Weights(int rows, int cols, int[] qweight, float[] absmax) {
    public static final int BLOCK = 64;

    /** The NormalFloat-4 levels (Dettmers et al., QLoRA, 2023; bitsandbytes' table), code 0..15. */
    public static final float[] CODEBOOK = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
        0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
        0.7229568362236023f, 1.0f};

    public Nf4Weights {
        if (rows < 1 || cols < BLOCK || cols % BLOCK != 0) {
            throw new IllegalArgumentException("NF4 weight [" + rows + ", " + cols + "] needs cols a positive multiple of 64");
        }
        if (qweight.length != rows * (cols / 8) || absmax.length != rows * (cols / BLOCK)) {
            throw new IllegalArgumentException("NF4 arrays do not match [" + rows + ", " + cols + "]");
        }
    }

    /** W[r, i] as the kernel computes it. */
    public float value(int r, int i) {
        int q = (qweight[r * (cols / 8) + i / 8] >>> (4 * (i % 8))) & 0xF;
        return CODEBOOK[q] * absmax[r * (cols / BLOCK) + i / BLOCK];
    }

    /** Each value's nearest level after dividing its block by the block's absmax (bitsandbytes' rule). */
    public static Nf4Weights quantize(float[] w, int rows, int cols) {
        int[] qweight = new int[rows * (cols / 8)];
        float[] absmax = new float[rows * (cols / BLOCK)];
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cols / BLOCK; b++) {
                float max = 0;
                for (int i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
                    max = Math.max(max, Math.abs(w[r * cols + i]));
                }
                absmax[r * (cols / BLOCK) + b] = max;
                for (int i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
                    float normalized = max > 0 ? w[r * cols + i] / max : 0f;
                    qweight[r * (cols / 8) + i / 8] |= nearest(normalized) << (4 * (i % 8));
                }
            }
        }
        return new Nf4Weights(rows, cols, qweight, absmax);
    }

    static int nearest(float v) {
        int best = 0;
        for (int q = 1; q < CODEBOOK.length; q++) {
            if (Math.abs(CODEBOOK[q] - v) < Math.abs(CODEBOOK[best] - v)) {
                best = q;
            }
        }
        return best;
    }
}
