package dev.lathe.core.sample;

import java.util.Arrays;

/**
 * Picks the next token from a row of logits, following one request's {@link SamplingParams}.
 *
 * <p>The chain, in order: penalties (repetition, presence, frequency) over the penalty window of
 * the history, then top-k, temperature, softmax, top-p, min-p, and a draw from what is left,
 * renormalized. Temperature 0 is greedy: the argmax after penalties, the lowest id on ties.
 *
 * <p>NOTE: temperature comes before top-p and min-p here (as in Hugging Face, vLLM and
 * llama2.c), so those filters see the tempered distribution. llama.cpp's current default chain
 * applies temperature last, after min-p; the two agree whenever temperature is 1 or top-p and
 * min-p are off.
 *
 * <p>Cost per token for a vocabulary of n: one pass over the logits for top-k (a heap of k
 * entries, no sort), one exp per remaining candidate, and for top-p a sort of only the tokens
 * above a probability threshold that provably holds the nucleus (usually a few hundred).
 *
 * <p>Holds scratch buffers of the vocabulary's size and a random generator: one sampler per
 * sequence, not shared between threads. The generator is seeded from {@link SamplingParams#seed()}
 * and is the same on every JVM, so the same seed, logits and history give the same tokens.
 */
public final class Sampler {
    // NOTE: exp(x) for x below this is under half the smallest float subnormal, so it rounds to
    // exactly 0f: dropping such a token changes no probability, it only saves time.
    private static final float EXP_UNDERFLOW = -105f;
    // NOTE: slack on the min-p cut in log space, far wider than FloatExp's error, so that the
    // exact test on probabilities (keepAboveMinP) still decides every token near the cut.
    private static final float MIN_P_LOG_SLACK = 0.01f;
    // NOTE: the first probability threshold tried for top-p, relative to the most likely token,
    // and the factor it shrinks by when the tokens above it do not yet hold topP of the mass.
    private static final float NUCLEUS_FIRST_THRESHOLD = 0x1p-6f;
    private static final float NUCLEUS_THRESHOLD_STEP = 0x1p-6f;

    private final SamplingParams params;
    private final int vocabularySize;
    private final SplitMix64 random;
    private final float dropBelowScaledLogit; // candidates under this (logit - max) / temperature cannot survive

    private final int[] occurrences;        // [vocabularySize] counts in the penalty window; all 0 between calls
    private final int[] penalizedTokens;    // [vocabularySize] distinct tokens of the penalty window
    private final int[] candidateIds;       // [vocabularySize] the first candidateCount are live
    private final float[] candidateWeights; // [vocabularySize] logits, then unnormalized probabilities
    private long[] nucleusKeys;             // [vocabularySize] top-p sort keys, allocated on first use
    private int candidateCount;
    private double candidateMass;           // sum of the live candidateWeights

    public Sampler(SamplingParams params, int vocabularySize) {
        if (params == null) {
            throw new IllegalArgumentException("sampling params are null");
        }
        if (vocabularySize < 1) {
            throw new IllegalArgumentException("vocabularySize = " + vocabularySize + ": expected >= 1");
        }
        this.params = params;
        this.vocabularySize = vocabularySize;
        this.random = new SplitMix64(params.seed());
        // Without top-p, which needs the mass of every candidate, min-p's cut can be made before the
        // exp: a probability below minP times the top one means (logit - max) / T < ln(minP).
        this.dropBelowScaledLogit = params.topP() == 1.0f && params.minP() > 0.0f
                ? Math.max(EXP_UNDERFLOW, (float) StrictMath.log(params.minP()) - MIN_P_LOG_SLACK)
                : EXP_UNDERFLOW;
        this.occurrences = new int[vocabularySize];
        this.penalizedTokens = new int[vocabularySize];
        this.candidateIds = new int[vocabularySize];
        this.candidateWeights = new float[vocabularySize];
    }

    public SamplingParams params() {
        return params;
    }

    public int vocabularySize() {
        return vocabularySize;
    }

    /**
     * Draws the next token and advances the generator (greedy sampling does not use it).
     *
     * @param logits        [vocabularySize] the model's scores for the next token; the penalties
     *                      are applied to this array in place, nothing else is written to it
     * @param history       the prompt followed by the tokens generated so far
     * @param historyLength how many leading entries of {@code history} are valid
     * @return a token id in [0, vocabularySize)
     */
    public int sample(float[] logits, int[] history, int historyLength) {
        checkLogits(logits);
        applyPenalties(logits, history, historyLength);
        if (params.isGreedy()) {
            return argmax(logits);
        }
        buildDistribution(logits);
        double target = random.nextDouble() * candidateMass;
        double cumulative = 0;
        int lastPossible = candidateIds[0];
        for (int i = 0; i < candidateCount; i++) {
            float weight = candidateWeights[i];
            if (weight > 0) {
                cumulative += weight;
                lastPossible = candidateIds[i];
                if (target < cumulative) {
                    return candidateIds[i];
                }
            }
        }
        // Only reached when rounding left target at the very top of the mass.
        return lastPossible;
    }

    /**
     * The exact distribution {@link #sample} would draw from for these inputs, after every step
     * of the chain, as [vocabularySize] probabilities summing to 1 (one-hot for greedy). Does not
     * advance the generator. Like {@code sample}, applies the penalties to {@code logits} in
     * place: pass a copy to sample from the same logits afterwards.
     */
    public float[] probabilities(float[] logits, int[] history, int historyLength) {
        checkLogits(logits);
        applyPenalties(logits, history, historyLength);
        float[] probabilities = new float[vocabularySize];
        if (params.isGreedy()) {
            probabilities[argmax(logits)] = 1.0f;
            return probabilities;
        }
        buildDistribution(logits);
        for (int i = 0; i < candidateCount; i++) {
            probabilities[candidateIds[i]] = (float) (candidateWeights[i] / candidateMass);
        }
        return probabilities;
    }

    /**
     * Draws a token from {@code weights} ([vocabularySize] non-negative, summing to a positive
     * mass, not necessarily 1) with this sampler's generator: how speculative decoding samples
     * a draft token from q and a replacement from the residual max(0, p - q).
     */
    public int sampleFrom(float[] weights) {
        if (weights == null || weights.length != vocabularySize) {
            throw new IllegalArgumentException("weights hold " + (weights == null ? "nothing (null)" : weights.length)
                    + " values, expected " + vocabularySize);
        }
        double mass = 0;
        for (float w : weights) {
            mass += w;
        }
        if (!(mass > 0)) {
            throw new IllegalArgumentException("cannot sample from weights whose sum is " + mass);
        }
        double target = random.nextDouble() * mass;
        double cumulative = 0;
        int lastPossible = -1;
        for (int i = 0; i < vocabularySize; i++) {
            if (weights[i] > 0) {
                cumulative += weights[i];
                lastPossible = i;
                if (target < cumulative) {
                    return i;
                }
            }
        }
        return lastPossible; // rounding left target at the very top of the mass
    }

    /** A uniform draw in [0, 1) from this sampler's generator (speculative decoding's acceptance test). */
    public double nextUniform() {
        return random.nextDouble();
    }

    /**
     * Applies the repetition, presence and frequency penalties to {@code logits} in place, for
     * each distinct token among the last {@code penaltyWindow} entries of the history: a
     * repetition penalty divides a positive logit and multiplies a negative or zero one, then
     * {@code logit -= presence + frequency * count}. Tokens outside the window are untouched.
     */
    public void applyPenalties(float[] logits, int[] history, int historyLength) {
        checkLogits(logits);
        if (history == null ? historyLength != 0 : historyLength < 0 || historyLength > history.length) {
            throw new IllegalArgumentException("historyLength = " + historyLength + " but history holds "
                    + (history == null ? "nothing (null)" : history.length + " tokens"));
        }
        if (!params.hasPenalties() || historyLength == 0) {
            return;
        }
        int window = params.penaltyWindow();
        int start = window == SamplingParams.WHOLE_HISTORY ? 0 : Math.max(0, historyLength - window);
        for (int i = start; i < historyLength; i++) {
            int token = history[i];
            if (token < 0 || token >= vocabularySize) {
                throw new IllegalArgumentException("history[" + i + "] = " + token
                        + ": not a token id of a vocabulary of " + vocabularySize);
            }
        }
        int distinct = 0;
        for (int i = start; i < historyLength; i++) {
            int token = history[i];
            if (occurrences[token]++ == 0) {
                penalizedTokens[distinct++] = token;
            }
        }
        float repetition = params.repetitionPenalty();
        float presence = params.presencePenalty();
        float frequency = params.frequencyPenalty();
        for (int i = 0; i < distinct; i++) {
            int token = penalizedTokens[i];
            int count = occurrences[token];
            occurrences[token] = 0;
            float logit = logits[token];
            if (repetition != 1.0f) {
                logit = logit > 0 ? logit / repetition : logit * repetition;
            }
            logits[token] = logit - (count * frequency + presence);
        }
    }

    private void checkLogits(float[] logits) {
        if (logits == null || logits.length != vocabularySize) {
            throw new IllegalArgumentException("logits hold " + (logits == null ? "nothing (null)" : logits.length)
                    + " values, expected one per token of a vocabulary of " + vocabularySize);
        }
    }

    /** The highest logit's token, the lowest id among equals (greedy decoding; one copy for every caller). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Leaves the final candidates and their unnormalized probabilities in the candidate arrays. */
    private void buildDistribution(float[] logits) {
        int topK = params.topK();
        if (topK > 0 && topK < vocabularySize) {
            selectTopK(logits, topK);
        } else {
            for (int i = 0; i < vocabularySize; i++) {
                candidateIds[i] = i;
            }
            System.arraycopy(logits, 0, candidateWeights, 0, vocabularySize);
            candidateCount = vocabularySize;
        }
        softmaxWithTemperature(params.temperature(), dropBelowScaledLogit);
        if (params.topP() < 1.0f) {
            keepNucleus(params.topP());
        }
        if (params.minP() > 0.0f) {
            keepAboveMinP(params.minP());
        }
    }

    /**
     * The k highest logits into the candidate arrays, used as a binary min-heap whose root is the
     * worst kept token, so each other token costs one comparison unless it enters the heap.
     */
    private void selectTopK(float[] logits, int k) {
        int[] ids = candidateIds;
        float[] values = candidateWeights;
        for (int i = 0; i < k; i++) {
            int slot = i;
            // sift up: a parent must be worse than its child (lower logit, or equal and higher id)
            while (slot > 0) {
                int parent = (slot - 1) >>> 1;
                if (!isWorse(logits[i], i, values[parent], ids[parent])) {
                    break;
                }
                ids[slot] = ids[parent];
                values[slot] = values[parent];
                slot = parent;
            }
            ids[slot] = i;
            values[slot] = logits[i];
        }
        for (int i = k; i < vocabularySize; i++) {
            // NOTE: ids arrive in increasing order, so a token tying the root's logit has the higher
            // id and loses: ties at the cut keep the lowest ids, which makes top-k=1 the argmax.
            if (logits[i] > values[0]) {
                siftDownFromRoot(ids, values, k, i, logits[i]);
            }
        }
        candidateCount = k;
    }

    private static void siftDownFromRoot(int[] ids, float[] values, int size, int id, float value) {
        int slot = 0;
        while (true) {
            int child = 2 * slot + 1;
            if (child >= size) {
                break;
            }
            int right = child + 1;
            if (right < size && isWorse(values[right], ids[right], values[child], ids[child])) {
                child = right;
            }
            if (!isWorse(values[child], ids[child], value, id)) {
                break;
            }
            ids[slot] = ids[child];
            values[slot] = values[child];
            slot = child;
        }
        ids[slot] = id;
        values[slot] = value;
    }

    private static boolean isWorse(float value, int id, float otherValue, int otherId) {
        return value < otherValue || (value == otherValue && id > otherId);
    }

    /**
     * Turns the candidate logits into exp((logit - max) / temperature): unnormalized
     * probabilities whose largest is exactly 1. Candidates whose scaled logit is below
     * {@code dropBelow} are removed. Sets {@link #candidateMass}.
     */
    private void softmaxWithTemperature(float temperature, float dropBelow) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < candidateCount; i++) {
            float logit = candidateWeights[i];
            if (Float.isNaN(logit)) {
                throw new IllegalArgumentException("logit of token " + candidateIds[i] + " is NaN");
            }
            max = Math.max(max, logit);
        }
        if (max == Float.NEGATIVE_INFINITY || max == Float.POSITIVE_INFINITY) {
            throw new IllegalArgumentException("cannot sample: the highest logit is " + max);
        }
        double mass = 0;
        int kept = 0;
        for (int i = 0; i < candidateCount; i++) {
            float scaled = (candidateWeights[i] - max) / temperature;
            if (scaled >= dropBelow) {
                // NOTE: FloatExp, not Math.exp: its results are the same bit for bit on every JVM
                // and CPU, so a seed gives the same tokens everywhere.
                float weight = FloatExp.exp(scaled);
                candidateIds[kept] = candidateIds[i];
                candidateWeights[kept] = weight;
                kept++;
                mass += weight;
            }
        }
        candidateCount = kept;
        candidateMass = mass;
    }

    /**
     * Keeps the smallest set of most likely candidates whose probability reaches topP, sorted by
     * probability, highest first (lower id first on ties).
     *
     * <p>Only tokens at or above a threshold are sorted. If the tokens at or above t hold at
     * least topP of the mass, the nucleus lies among them (it is a prefix of the sorted order), so
     * t starts high and shrinks until that holds. It never needs to go below
     * (1 - topP) * mass / n: a nucleus token with weight w has every token not ahead of it
     * (at most n of them, each <= w) carrying more than (1 - topP) of the mass, so n * w exceeds it.
     */
    private void keepNucleus(float topP) {
        double target = topP * candidateMass;
        float floor = (float) ((1.0 - topP) * candidateMass / candidateCount);
        float threshold = NUCLEUS_FIRST_THRESHOLD;
        while (true) {
            double selectedMass = 0;
            for (int i = 0; i < candidateCount; i++) {
                if (candidateWeights[i] >= threshold) {
                    selectedMass += candidateWeights[i];
                }
            }
            if (selectedMass >= target || threshold == 0.0f) {
                break;
            }
            // Past the proven floor only rounding can leave the target unmet: then take everything.
            threshold = threshold > floor ? Math.max(threshold * NUCLEUS_THRESHOLD_STEP, floor) : 0.0f;
        }
        if (nucleusKeys == null) {
            nucleusKeys = new long[vocabularySize];
        }
        long[] keys = nucleusKeys;
        int n = 0;
        for (int i = 0; i < candidateCount; i++) {
            float weight = candidateWeights[i];
            if (weight >= threshold) {
                // Weights are >= 0, so their bit patterns order like the values; flipping them
                // makes an ascending sort put the heaviest first, and the id in the low half
                // breaks ties toward the lower id.
                keys[n++] = ((long) (Integer.MAX_VALUE - Float.floatToRawIntBits(weight)) << 32) | candidateIds[i];
            }
        }
        Arrays.sort(keys, 0, n);
        double cumulative = 0;
        int kept = n;
        for (int i = 0; i < n; i++) {
            int id = (int) keys[i];
            float weight = Float.intBitsToFloat(Integer.MAX_VALUE - (int) (keys[i] >>> 32));
            candidateIds[i] = id;
            candidateWeights[i] = weight;
            cumulative += weight;
            if (cumulative >= target) {
                kept = i + 1;
                break;
            }
        }
        candidateCount = kept;
        candidateMass = cumulative;
    }

    /** Keeps the candidates whose probability is at least minP times the most likely one's (weight 1). */
    private void keepAboveMinP(float minP) {
        int kept = 0;
        double mass = 0;
        for (int i = 0; i < candidateCount; i++) {
            float weight = candidateWeights[i];
            if (weight >= minP) {
                candidateIds[kept] = candidateIds[i];
                candidateWeights[kept] = weight;
                kept++;
                mass += weight;
            }
        }
        candidateCount = kept;
        candidateMass = mass;
    }
}
