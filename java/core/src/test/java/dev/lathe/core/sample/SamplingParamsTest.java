package dev.lathe.core.sample;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplingParamsTest {

    @Test
    void defaultsAreValidAndNeutral() {
        SamplingParams params = SamplingParams.defaults();
        assertEquals(1.0f, params.temperature());
        assertEquals(0, params.topK());
        assertEquals(1.0f, params.topP());
        assertEquals(0.0f, params.minP());
        assertEquals(64, params.penaltyWindow());
        assertFalse(params.hasPenalties());
        assertFalse(params.isGreedy());
        assertTrue(SamplingParams.greedy().isGreedy());
    }

    @Test
    void withersChangeOneFieldAndKeepTheRest() {
        SamplingParams params = SamplingParams.defaults()
                .withTemperature(0.7f).withTopK(40).withTopP(0.95f).withMinP(0.05f)
                .withRepetitionPenalty(1.1f).withPresencePenalty(0.5f).withFrequencyPenalty(-0.25f)
                .withPenaltyWindow(-1).withSeed(42L).withMaxNewTokens(10).withStopStrings(List.of("\n\n"));
        assertEquals(new SamplingParams(0.7f, 40, 0.95f, 0.05f, 1.1f, 0.5f, -0.25f, -1, 42L, 10, List.of("\n\n")),
                params);
        assertTrue(params.hasPenalties());
        assertFalse(params.withRepetitionPenalty(1f).withPresencePenalty(0f).withFrequencyPenalty(0f).hasPenalties());
        assertFalse(params.withPenaltyWindow(0).hasPenalties());
    }

    @Test
    void stopStringsAreCopied() {
        List<String> stops = new ArrayList<>(List.of("a"));
        SamplingParams params = SamplingParams.defaults().withStopStrings(stops);
        stops.add("b");
        assertEquals(List.of("a"), params.stopStrings());
        assertThrows(UnsupportedOperationException.class, () -> params.stopStrings().add("c"));
    }

    @Test
    void boundaryValuesAreAccepted() {
        SamplingParams base = SamplingParams.defaults();
        base.withTemperature(0f).withTopP(1f).withTopP(Float.MIN_VALUE).withMinP(0f).withMinP(0.999f)
                .withPenaltyWindow(-1).withPenaltyWindow(0).withRepetitionPenalty(Float.MIN_VALUE)
                .withPresencePenalty(-2f).withFrequencyPenalty(2f).withMaxNewTokens(1).withSeed(Long.MIN_VALUE);
    }

    @Test
    void invalidValuesAreRejectedNamingParameterAndValue() {
        SamplingParams base = SamplingParams.defaults();
        assertRejected("temperature", "-0.5", () -> base.withTemperature(-0.5f));
        assertRejected("temperature", "NaN", () -> base.withTemperature(Float.NaN));
        assertRejected("temperature", "Infinity", () -> base.withTemperature(Float.POSITIVE_INFINITY));
        assertRejected("topK", "-1", () -> base.withTopK(-1));
        assertRejected("topP", "0.0", () -> base.withTopP(0f));
        assertRejected("topP", "1.5", () -> base.withTopP(1.5f));
        assertRejected("topP", "NaN", () -> base.withTopP(Float.NaN));
        assertRejected("minP", "1.0", () -> base.withMinP(1f));
        assertRejected("minP", "-0.1", () -> base.withMinP(-0.1f));
        assertRejected("repetitionPenalty", "0.0", () -> base.withRepetitionPenalty(0f));
        assertRejected("repetitionPenalty", "-1.0", () -> base.withRepetitionPenalty(-1f));
        assertRejected("presencePenalty", "NaN", () -> base.withPresencePenalty(Float.NaN));
        assertRejected("frequencyPenalty", "-Infinity", () -> base.withFrequencyPenalty(Float.NEGATIVE_INFINITY));
        assertRejected("penaltyWindow", "-2", () -> base.withPenaltyWindow(-2));
        assertRejected("maxNewTokens", "0", () -> base.withMaxNewTokens(0));
        assertRejected("stopStrings", "null", () -> base.withStopStrings(null));
        assertRejected("stopStrings[1]", "\"\"", () -> base.withStopStrings(List.of("x", "")));
        assertRejected("stopStrings[0]", "null", () -> base.withStopStrings(Arrays.asList((String) null)));
    }

    private static void assertRejected(String parameter, String value, Executable construction) {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, construction);
        assertTrue(error.getMessage().contains(parameter + " = " + value),
                "message should name " + parameter + " = " + value + ": " + error.getMessage());
    }
}
