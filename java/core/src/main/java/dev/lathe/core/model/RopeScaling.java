package dev.lathe.core.model;

/**
 * Llama 3.1 frequency scaling ("rope_type": "llama3"): wavelengths longer than
 * {@code originalContext / lowFreqFactor} are divided by {@code factor}, those shorter than
 * {@code originalContext / highFreqFactor} are kept, and the band between is interpolated.
 */
public record RopeScaling(float factor, float lowFreqFactor, float highFreqFactor, int originalContext) {
}
