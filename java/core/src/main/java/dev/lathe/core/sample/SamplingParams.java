package dev.lathe.core.sample;

import java.util.List;

/**
 * How one request picks its next tokens. Validated on construction: an invalid value throws
 * {@link IllegalArgumentException} naming the parameter and the value. Start from
 * {@link #defaults()} or {@link #greedy()} and change fields with the {@code with...} methods.
 *
 * @param temperature        divides the logits before the softmax; 0 means greedy (argmax
 *                           after penalties), must be finite and >= 0
 * @param topK               keep only the k most likely tokens; 0 turns it off
 * @param topP               nucleus: keep the smallest set of most likely tokens whose
 *                           probability reaches topP; in (0, 1], 1 turns it off
 * @param minP               drop tokens whose probability is below minP times the most likely
 *                           token's; in [0, 1), 0 turns it off
 * @param repetitionPenalty  llama.cpp / Hugging Face style, for every token in the penalty
 *                           window: a positive logit is divided by it, a negative (or zero)
 *                           one multiplied; > 0, 1 turns it off
 * @param presencePenalty    OpenAI style: subtracted once from the logit of every token that
 *                           occurs in the penalty window; 0 turns it off
 * @param frequencyPenalty   OpenAI style: subtracted from a token's logit once per occurrence
 *                           in the penalty window; 0 turns it off
 * @param penaltyWindow      how many of the last history tokens the penalties look at;
 *                           -1 means the whole history, 0 disables the penalties
 * @param seed               seeds the sampler's generator: the same seed and inputs give the
 *                           same tokens, on any JVM
 * @param maxNewTokens       at most this many tokens are generated, >= 1
 * @param stopStrings        generation stops when the text contains one of these; none may be
 *                           null or empty
 */
public record SamplingParams(
        float temperature,
        int topK,
        float topP,
        float minP,
        float repetitionPenalty,
        float presencePenalty,
        float frequencyPenalty,
        int penaltyWindow,
        long seed,
        int maxNewTokens,
        List<String> stopStrings) {

    public static final int DEFAULT_PENALTY_WINDOW = 64;
    public static final int DEFAULT_MAX_NEW_TOKENS = 256;
    /** {@link #penaltyWindow} value meaning "the whole history". */
    public static final int WHOLE_HISTORY = -1;

    public SamplingParams {
        // NOTE: every check is written so that NaN fails it (NaN compares false).
        if (!(temperature >= 0 && temperature < Float.POSITIVE_INFINITY)) {
            throw invalid("temperature", temperature, "a finite value >= 0 (0 = greedy)");
        }
        if (topK < 0) {
            throw invalid("topK", topK, ">= 0 (0 = off)");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw invalid("topP", topP, "in (0, 1] (1 = off)");
        }
        if (!(minP >= 0 && minP < 1)) {
            throw invalid("minP", minP, "in [0, 1) (0 = off)");
        }
        if (!(repetitionPenalty > 0 && repetitionPenalty < Float.POSITIVE_INFINITY)) {
            throw invalid("repetitionPenalty", repetitionPenalty, "a finite value > 0 (1 = off)");
        }
        if (!Float.isFinite(presencePenalty)) {
            throw invalid("presencePenalty", presencePenalty, "a finite value (0 = off)");
        }
        if (!Float.isFinite(frequencyPenalty)) {
            throw invalid("frequencyPenalty", frequencyPenalty, "a finite value (0 = off)");
        }
        if (penaltyWindow < WHOLE_HISTORY) {
            throw invalid("penaltyWindow", penaltyWindow, ">= 0, or -1 for the whole history");
        }
        if (maxNewTokens < 1) {
            throw invalid("maxNewTokens", maxNewTokens, ">= 1");
        }
        if (stopStrings == null) {
            throw invalid("stopStrings", null, "a list (may be empty)");
        }
        for (int i = 0; i < stopStrings.size(); i++) {
            String stop = stopStrings.get(i);
            if (stop == null || stop.isEmpty()) {
                throw invalid("stopStrings[" + i + "]", stop == null ? null : "\"\"", "a non-empty string");
            }
        }
        stopStrings = List.copyOf(stopStrings);
    }

    /**
     * Plain sampling from the model's distribution: temperature 1, every filter and penalty off,
     * penalty window 64, seed 0, 256 new tokens, no stop strings.
     */
    public static SamplingParams defaults() {
        return new SamplingParams(1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f,
                DEFAULT_PENALTY_WINDOW, 0L, DEFAULT_MAX_NEW_TOKENS, List.of());
    }

    /** {@link #defaults()} with temperature 0: always the most likely token. */
    public static SamplingParams greedy() {
        return defaults().withTemperature(0.0f);
    }

    public boolean isGreedy() {
        return temperature == 0.0f;
    }

    /** Whether any of repetition, presence or frequency penalty would change a logit. */
    public boolean hasPenalties() {
        return penaltyWindow != 0
                && (repetitionPenalty != 1.0f || presencePenalty != 0.0f || frequencyPenalty != 0.0f);
    }

    public SamplingParams withTemperature(float value) {
        return new SamplingParams(value, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withTopK(int value) {
        return new SamplingParams(temperature, value, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withTopP(float value) {
        return new SamplingParams(temperature, topK, value, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withMinP(float value) {
        return new SamplingParams(temperature, topK, topP, value, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withRepetitionPenalty(float value) {
        return new SamplingParams(temperature, topK, topP, minP, value, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withPresencePenalty(float value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, value,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withFrequencyPenalty(float value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                value, penaltyWindow, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withPenaltyWindow(int value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, value, seed, maxNewTokens, stopStrings);
    }

    public SamplingParams withSeed(long value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, value, maxNewTokens, stopStrings);
    }

    public SamplingParams withMaxNewTokens(int value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, value, stopStrings);
    }

    public SamplingParams withStopStrings(List<String> value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, penaltyWindow, seed, maxNewTokens, value);
    }

    private static IllegalArgumentException invalid(String parameter, Object value, String expected) {
        return new IllegalArgumentException(
                "invalid sampling parameter " + parameter + " = " + value + ": expected " + expected);
    }
}
