package dev.lathe.core.model;

/** RoPE inverse frequencies per rotated pair, with Llama 3.1 scaling or per-pair factors applied. */
public final class RopeFrequencies {
    private RopeFrequencies() {
    }

    /**
     * {@code invFreq[i] = theta^(-2i / headDim)} for {@code i < headDim / 2}, then scaled.
     *
     * @param factors per-pair divisors (GGUF {@code rope_freqs.weight}), or null
     */
    public static float[] compute(int headDim, float theta, RopeScaling scaling, float[] factors) {
        int half = headDim / 2;
        float[] invFreq = new float[half];
        for (int i = 0; i < half; i++) {
            // NOTE: computed in float as llama2.c does (1 / powf(theta, 2i / headDim)), so its golden outputs match.
            invFreq[i] = 1.0f / (float) Math.pow(theta, (2 * i) / (float) headDim);
        }
        if (scaling != null) {
            applyLlama3(invFreq, scaling);
        }
        if (factors != null) {
            if (factors.length != half) {
                throw new IllegalArgumentException("rope frequency factors: expected " + half + ", got " + factors.length);
            }
            for (int i = 0; i < half; i++) {
                invFreq[i] /= factors[i];
            }
        }
        return invFreq;
    }

    /** Llama 3.1's rule ("rope_type": "llama3"), as in Meta's reference apply_scaling. */
    private static void applyLlama3(float[] invFreq, RopeScaling s) {
        double lowFreqWavelen = s.originalContext() / s.lowFreqFactor();
        double highFreqWavelen = s.originalContext() / s.highFreqFactor();
        for (int i = 0; i < invFreq.length; i++) {
            double freq = invFreq[i];
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highFreqWavelen) {
                continue; // high frequencies are kept
            }
            if (wavelen > lowFreqWavelen) {
                invFreq[i] = (float) (freq / s.factor());
            } else {
                double smooth = (s.originalContext() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                invFreq[i] = (float) ((1 - smooth) * freq / s.factor() + smooth * freq);
            }
        }
    }
}
