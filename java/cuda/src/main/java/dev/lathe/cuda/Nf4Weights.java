package dev.lathe.cuda;

import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.Nf4Codebook;
import dev.lathe.core.tensor.WeightMatrix;

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

    /** The NormalFloat-4 levels, code 0..15 (the same table as kernels/quant/int4_gemv.cuh's kNf4). */
    static final float[] CODEBOOK = Nf4Codebook.values();

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

    /** Whether a model file's weight in {@code format} has this layout's exact values (NF4 in blocks of 64). */
    static boolean holds(LatheFormat format) {
        return format.kind() == LatheFormat.Kind.NF4 && format.groupSize() == BLOCK;
    }

    /** An NF4 matrix of a model file ({@link #holds} its format) in the kernel layout, values unchanged. */
    static Nf4Weights of(WeightMatrix w) {
        if (!(w.format() instanceof LatheFormat f) || !holds(f)) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ", not NF4 in blocks of " + BLOCK);
        }
        int rows = w.rows();
        int cols = w.cols();
        int[] qweight = new int[rows * (cols / 8)];
        float[] absmax = new float[rows * (cols / BLOCK)];
        byte[] codes = new byte[cols];
        float[] rowAbsmax = new float[cols / BLOCK];
        for (int r = 0; r < rows; r++) {
            LatheEncoder.unpackNf4Row(w, r, codes, rowAbsmax);
            System.arraycopy(rowAbsmax, 0, absmax, r * (cols / BLOCK), rowAbsmax.length);
            packNibbles(codes, qweight, r * (cols / 8));
        }
        return new Nf4Weights(rows, cols, qweight, absmax);
    }

    /** {@code nibbles[cols]} (0..15) into words from {@code words[at]}: value 8j+n in bits 4n .. 4n+3 of word j. */
    static void packNibbles(byte[] nibbles, int[] words, int at) {
        for (int j = 0; j < nibbles.length / 8; j++) {
            int word = 0;
            for (int n = 0; n < 8; n++) {
                word |= (nibbles[8 * j + n] & 0xF) << (4 * n);
            }
            words[at + j] = word;
        }
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
