package dev.lathe.cli;

import dev.lathe.core.sample.SamplingParams;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/** Sampling options of {@code generate} (and later the server's defaults). */
final class SamplingOptions {
    @Option(names = {"-n", "--max-new"}, paramLabel = "N", description = "Tokens to generate at most (default ${DEFAULT-VALUE}).")
    int maxNew = 256;

    @Option(names = "--temperature", paramLabel = "T", description = "0 = greedy (default ${DEFAULT-VALUE}).")
    float temperature = 0.8f;

    @Option(names = "--top-k", paramLabel = "K", description = "Keep the K most likely tokens; 0 = off (default ${DEFAULT-VALUE}).")
    int topK = 40;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus: keep the smallest set with mass >= P; 1 = off (default ${DEFAULT-VALUE}).")
    float topP = 0.95f;

    @Option(names = "--min-p", paramLabel = "P", description = "Drop tokens below P x the top probability; 0 = off (default ${DEFAULT-VALUE}).")
    float minP = 0.05f;

    @Option(names = "--repeat-penalty", paramLabel = "F", description = "Repetition penalty; 1 = off (default ${DEFAULT-VALUE}).")
    float repeatPenalty = 1.0f;

    @Option(names = "--presence-penalty", paramLabel = "F", description = "OpenAI presence penalty; 0 = off.")
    float presencePenalty = 0f;

    @Option(names = "--frequency-penalty", paramLabel = "F", description = "OpenAI frequency penalty; 0 = off.")
    float frequencyPenalty = 0f;

    @Option(names = "--penalty-window", paramLabel = "N", description = "Last N tokens the penalties look at; -1 = all (default ${DEFAULT-VALUE}).")
    int penaltyWindow = SamplingParams.DEFAULT_PENALTY_WINDOW;

    @Option(names = "--seed", paramLabel = "S", description = "Random seed (default: a fresh one, printed on stderr).")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop when the output contains TEXT (repeatable).")
    List<String> stop = new ArrayList<>();

    SamplingParams toParams() {
        long s = seed != null ? seed : ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE;
        return new SamplingParams(temperature, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty,
                penaltyWindow, s, maxNew, stop);
    }
}
