package dev.lathe.core.engine;

import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.sched.SchedulerConfig;
import dev.lathe.core.spec.Speculation;

/**
 * How an {@link Engine} is set up.
 *
 * @param kvMemoryBytes the KV pool's budget in bytes (K and V, every layer); the pool never exceeds it
 * @param blockSize     tokens per KV block
 * @param scheduler     token budget per step and cap on running sequences
 * @param prefixCaching reuse cached full blocks of earlier prompts
 * @param speculation   speculative decoding's drafter and K, or null for plain decoding
 * @param kvDtype       the element type K and V are stored in (f16/bf16: twice the blocks of f32 per byte)
 */
public record EngineConfig(long kvMemoryBytes, int blockSize, SchedulerConfig scheduler, boolean prefixCaching,
                           Speculation speculation, KvDtype kvDtype) {
    public static final long DEFAULT_KV_MEMORY = 512L << 20;
    public static final int DEFAULT_BLOCK_SIZE = 16;

    public EngineConfig {
        if (kvMemoryBytes < 1) {
            throw new IllegalArgumentException("KV memory must be positive, got " + kvMemoryBytes);
        }
        if (blockSize < 1 || blockSize > 1024) {
            throw new IllegalArgumentException("block size must be in [1, 1024], got " + blockSize);
        }
        if (scheduler == null) {
            throw new IllegalArgumentException("scheduler config is null");
        }
        if (kvDtype == null) {
            throw new IllegalArgumentException("KV element type is null");
        }
    }

    public EngineConfig(long kvMemoryBytes, int blockSize, SchedulerConfig scheduler, boolean prefixCaching,
                        Speculation speculation) {
        this(kvMemoryBytes, blockSize, scheduler, prefixCaching, speculation, KvDtype.F32);
    }

    public EngineConfig(long kvMemoryBytes, int blockSize, SchedulerConfig scheduler, boolean prefixCaching) {
        this(kvMemoryBytes, blockSize, scheduler, prefixCaching, null);
    }

    public static EngineConfig defaults() {
        return new EngineConfig(DEFAULT_KV_MEMORY, DEFAULT_BLOCK_SIZE, SchedulerConfig.defaults(), true);
    }

    public EngineConfig withKvMemory(long bytes) {
        return new EngineConfig(bytes, blockSize, scheduler, prefixCaching, speculation, kvDtype);
    }

    public EngineConfig withBlockSize(int tokens) {
        return new EngineConfig(kvMemoryBytes, tokens, scheduler, prefixCaching, speculation, kvDtype);
    }

    public EngineConfig withScheduler(SchedulerConfig value) {
        return new EngineConfig(kvMemoryBytes, blockSize, value, prefixCaching, speculation, kvDtype);
    }

    public EngineConfig withPrefixCaching(boolean value) {
        return new EngineConfig(kvMemoryBytes, blockSize, scheduler, value, speculation, kvDtype);
    }

    /** With speculative decoding (null: without). */
    public EngineConfig withSpeculation(Speculation value) {
        return new EngineConfig(kvMemoryBytes, blockSize, scheduler, prefixCaching, value, kvDtype);
    }

    /** With K and V stored as {@code value}. */
    public EngineConfig withKvDtype(KvDtype value) {
        return new EngineConfig(kvMemoryBytes, blockSize, scheduler, prefixCaching, speculation, value);
    }
}
