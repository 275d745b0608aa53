package dev.lathe.cli;

import dev.lathe.core.generate.DecodeStats;
import dev.lathe.core.generate.GenerationResult;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.sample.SamplingParams;

import java.util.Arrays;

/**
 * {@code lathe bench --speculate ...} or {@code --early-exit ...}: plain decoding and the variant,
 * alternated on the same prompt in the same run (so machine noise hits both alike), greedy, with
 * decode tokens/s medians, the speedup of the medians, and whether the outputs agree.
 */
final class DecodeComparison {
    private DecodeComparison() {
    }

    record Result(Throughput.Figure plain, Throughput.Figure variant, DecodeStats variantStats, int tokens,
                  int identicalPrefix, boolean identical) {
        double speedup() {
            return variant.median() / plain.median();
        }
    }

    static Result measure(Generator plain, Generator variant, int[] prompt, int genTokens, int repeats) {
        SamplingParams greedy = SamplingParams.greedy().withMaxNewTokens(genTokens);
        double[] plainSpeed = new double[repeats];
        double[] variantSpeed = new double[repeats];
        GenerationResult a = null;
        GenerationResult b = null;
        // One untimed warm-up of each lets the JIT compile both paths first.
        for (int r = -1; r < repeats; r++) {
            a = plain.generate(prompt, greedy, null);
            b = variant.generate(prompt, greedy, null);
            if (r >= 0) {
                plainSpeed[r] = a.decodeTokensPerSecond();
                variantSpeed[r] = b.decodeTokensPerSecond();
            }
        }
        int same = 0;
        while (same < Math.min(a.tokens().length, b.tokens().length) && a.tokens()[same] == b.tokens()[same]) {
            same++;
        }
        return new Result(Throughput.Figure.of(plainSpeed), Throughput.Figure.of(variantSpeed), b.decodeStats(),
                a.tokens().length, same, Arrays.equals(a.tokens(), b.tokens()));
    }
}
