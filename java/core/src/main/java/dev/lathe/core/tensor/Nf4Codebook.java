package dev.lathe.core.tensor;

/**
 * The NormalFloat-4 code values of QLoRA (Dettmers et al., 2023) as bitsandbytes ships them:
 * the 16 quantiles of a standard normal rescaled to [-1, 1], with an exact zero; index 7 is 0.
 */
public final class Nf4Codebook {
    private Nf4Codebook() {
    }

    private static final float[] VALUES = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    /** A copy of the 16 values, ascending. */
    public static float[] values() {
        return VALUES.clone();
    }

    static float value(int code) {
        return VALUES[code];
    }

    /** The code whose value is nearest to {@code v} (v already divided by the group's absmax). */
    public static int nearest(float v) {
        int best = 0;
        float bestDistance = Float.POSITIVE_INFINITY;
        for (int c = 0; c < 16; c++) {
            float distance = Math.abs(VALUES[c] - v);
            if (distance < bestDistance) {
                bestDistance = distance;
                best = c;
            }
        }
        return best;
    }
}
