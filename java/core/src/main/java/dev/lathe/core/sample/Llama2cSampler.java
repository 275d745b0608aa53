package dev.lathe.core.sample;

import java.util.Arrays;

/**
 * The sampler of llama2.c's run.c, step for step in float arithmetic, so that a model run with
 * the same seed reproduces run.c's output ({@code ./run model.bin -t T -p P -s SEED}).
 *
 * <p>run.c: temperature 0 takes the argmax (first on ties). Otherwise it divides the logits by
 * the temperature, takes a softmax, flips one coin per token in [0, 1) and walks the cumulative
 * probabilities in token order, or, for 0 < topP < 1, in descending probability order over the
 * tokens at or above the cutoff (1 - topP) / (n - 1), stopping after the first token whose
 * cumulative probability exceeds topP and scaling the coin by that cumulative probability.
 *
 * <p>NOTE: run.c orders the top-p candidates with the C library's qsort, which the C standard
 * leaves free to order equal probabilities any way. glibc's qsort has long been a merge sort,
 * which keeps equal probabilities in token order; this class sorts the same way (ties toward the
 * lower id). Ties only matter when two candidates have bit-identical probabilities.
 *
 * <p>NOTE: exp is {@code (float) StrictMath.exp}; run.c calls glibc's expf. Both are within about
 * half an ulp of exact, so they can differ in the last bit of a probability on rare inputs; that
 * changes the drawn token only when the coin lands within an ulp of a boundary.
 *
 * <p>Not thread-safe.
 */
public final class Llama2cSampler {
    private final int vocabularySize;
    private final float temperature;
    private final float topP;
    private final float[] nucleusProbabilities; // [vocabularySize] top-p candidates, in sorted order
    private final int[] nucleusIds;             // [vocabularySize]
    private final long[] nucleusKeys;           // [vocabularySize]
    private long rngState;

    /**
     * @param temperature >= 0, 0 = greedy
     * @param topP        run.c's -p; values <= 0 or >= 1 sample from the whole distribution
     * @param seed        run.c's -s, the xorshift state; not 0 (run.c replaces 0 by the time)
     */
    public Llama2cSampler(int vocabularySize, float temperature, float topP, long seed) {
        if (vocabularySize < 1) {
            throw new IllegalArgumentException("vocabularySize = " + vocabularySize + ": expected >= 1");
        }
        if (!(temperature >= 0 && temperature < Float.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("temperature = " + temperature + ": expected a finite value >= 0");
        }
        if (Float.isNaN(topP)) {
            throw new IllegalArgumentException("topP = NaN");
        }
        if (seed == 0) {
            throw new IllegalArgumentException(
                    "seed = 0: xorshift would only produce zeros (run.c seeds from the clock instead)");
        }
        this.vocabularySize = vocabularySize;
        this.temperature = temperature;
        this.topP = topP;
        this.rngState = seed;
        this.nucleusProbabilities = new float[vocabularySize];
        this.nucleusIds = new int[vocabularySize];
        this.nucleusKeys = new long[vocabularySize];
    }

    /**
     * The next token, as run.c's sample(). Overwrites {@code logits} with the probabilities,
     * as run.c does.
     *
     * @param logits [vocabularySize]
     */
    public int sample(float[] logits) {
        if (logits == null || logits.length != vocabularySize) {
            throw new IllegalArgumentException("logits hold " + (logits == null ? "nothing (null)" : logits.length)
                    + " values, expected " + vocabularySize);
        }
        if (temperature == 0.0f) {
            return Sampler.argmax(logits);
        }
        for (int i = 0; i < vocabularySize; i++) {
            logits[i] /= temperature;
        }
        softmax(logits);
        float coin = nextFloat();
        if (topP <= 0 || topP >= 1 || vocabularySize == 1) {
            // NOTE: run.c's top-p would divide by n - 1 = 0 for a single token; one token can only
            // be drawn one way, so both paths agree there.
            return sampleInTokenOrder(logits, coin);
        }
        return sampleNucleus(logits, coin);
    }

    /** run.c's random_u32: one xorshift64* step, the high 32 bits of the scrambled state. */
    int nextUnsignedInt() {
        rngState ^= rngState >>> 12;
        rngState ^= rngState << 25;
        rngState ^= rngState >>> 27;
        return (int) ((rngState * 0x2545F4914F6CDD1DL) >>> 32);
    }

    /** run.c's random_f32: the top 24 bits of a random_u32, in [0, 1). */
    float nextFloat() {
        return (nextUnsignedInt() >>> 8) / 16777216.0f;
    }

    /** In place, in run.c's order of float operations: subtract the max, exp, sum, divide. */
    private static void softmax(float[] values) {
        float max = values[0];
        for (int i = 1; i < values.length; i++) {
            if (values[i] > max) {
                max = values[i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) StrictMath.exp(values[i] - max);
            sum += values[i];
        }
        for (int i = 0; i < values.length; i++) {
            values[i] /= sum;
        }
    }

    private static int sampleInTokenOrder(float[] probabilities, float coin) {
        float cdf = 0.0f;
        for (int i = 0; i < probabilities.length; i++) {
            cdf += probabilities[i];
            if (coin < cdf) {
                return i;
            }
        }
        return probabilities.length - 1;
    }

    private int sampleNucleus(float[] probabilities, float coin) {
        float cutoff = (1.0f - topP) / (vocabularySize - 1);
        int count = 0;
        for (int i = 0; i < vocabularySize; i++) {
            float p = probabilities[i];
            if (p >= cutoff) {
                // Probabilities are >= 0, so their bits order like their values; the flip sorts the
                // most likely first and the id in the low half keeps ties in token order.
                nucleusKeys[count++] = ((long) (Integer.MAX_VALUE - Float.floatToRawIntBits(p)) << 32) | i;
            }
        }
        if (count == 0) {
            // NOTE: possible only when topP < 1/n and the distribution is near uniform; run.c would
            // then read before its buffer. The most likely token is the nucleus's only sensible member.
            return Sampler.argmax(probabilities);
        }
        Arrays.sort(nucleusKeys, 0, count);
        for (int i = 0; i < count; i++) {
            nucleusIds[i] = (int) nucleusKeys[i];
            nucleusProbabilities[i] = Float.intBitsToFloat(Integer.MAX_VALUE - (int) (nucleusKeys[i] >>> 32));
        }
        float cumulative = 0.0f;
        int last = count - 1;
        for (int i = 0; i < count; i++) {
            cumulative += nucleusProbabilities[i];
            if (cumulative > topP) {
                last = i;
                break;
            }
        }
        float target = coin * cumulative;
        float cdf = 0.0f;
        for (int i = 0; i <= last; i++) {
            cdf += nucleusProbabilities[i];
            if (target < cdf) {
                return nucleusIds[i];
            }
        }
        return nucleusIds[last];
    }
}
