package dev.lathe.core.sched;

/**
 * Limits of one scheduling step.
 *
 * @param maxBatchedTokens the token budget: at most this many new tokens (prefill chunks and decode
 *                         tokens together) go through one forward pass; bounds activation memory
 * @param maxRunning       at most this many sequences hold KV blocks and run at once
 */
public record SchedulerConfig(int maxBatchedTokens, int maxRunning) {
    public static final int DEFAULT_MAX_BATCHED_TOKENS = 512;
    public static final int DEFAULT_MAX_RUNNING = 64;

    public SchedulerConfig {
        if (maxBatchedTokens < 1) {
            throw new IllegalArgumentException("max batched tokens must be at least 1, got " + maxBatchedTokens);
        }
        if (maxRunning < 1) {
            throw new IllegalArgumentException("max running sequences (--max-batch) must be at least 1, got " + maxRunning);
        }
    }

    public static SchedulerConfig defaults() {
        return new SchedulerConfig(DEFAULT_MAX_BATCHED_TOKENS, DEFAULT_MAX_RUNNING);
    }
}
