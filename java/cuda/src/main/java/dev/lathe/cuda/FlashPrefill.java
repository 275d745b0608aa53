package dev.lathe.cuda;

import dev.lathe.core.backend.BatchPlan;

/**
 * When a step's attention runs on the tensor-core flash prefill kernel
 * (kernels/attention/flash_prefill.cuh, {@code lathe_flash_prefill}) instead of the per-token
 * paged kernel (paged_attention.cuh): the switch, the shapes the kernel has, and the batches it
 * pays for. Pure functions of the plan, so the decision is tested without a GPU.
 *
 * <p>NOTE: on unless {@code -Dlathe.cuda.flashPrefill=off} or {@code LATHE_CUDA_FLASH_PREFILL=off}
 * (the same parsing as {@code lathe.cuda.graphs}). Written without a GPU, the kernel stayed off
 * until bench/gpu/run.sh showed it agrees with the CPU (CudaParityTest.flashPrefill*,
 * ModelParityTest.flashPrefillMatchesTheCpu) and is faster: prefill of 512 and 2000 tokens
 * 1.62x and 2.95x on the H100 (bench/results/gpu-20261123-h100).
 */
final class FlashPrefill {
    static final String PROPERTY = "lathe.cuda.flashPrefill";
    static final String ENVIRONMENT = "LATHE_CUDA_FLASH_PREFILL";
    /** Query rows per tile (kFlashRows): new tokens x the query heads of one KV head. */
    static final int TILE_ROWS = 64;
    /**
     * Fewest new tokens of one sequence worth a flash tile.
     *
     * <p>NOTE: 32. The paged kernel runs one block per (token, KV head) and re-reads the window
     * once per token; the flash kernel one block per (64 rows, KV head) reading it once per tile.
     * Under 32 tokens a chunk is at most half a tile at group 1, its re-reads of a window mostly
     * hit L2, and the paged kernel spreads it over 32x more blocks (and splits long windows
     * across blocks, which the flash kernel does not): so the paged kernel should win there. A
     * first guess from those counts, to be tuned on a GPU with KernelBenchmark's flash rows.
     */
    static final int MIN_CHUNK_TOKENS = 32;

    private FlashPrefill() {
    }

    /** Whether the switch turns the kernel on: the system property first, then the environment; off when unset. */
    static boolean enabled() {
        return CudaSwitch.enabled(PROPERTY, ENVIRONMENT);
    }

    /** Whether the kernel has an instantiation for these shapes (flash_prefill_supports, kFlashMaxGroup). */
    static boolean supports(int headDim, int group) {
        return (headDim == 64 || headDim == 128) && group >= 1 && group <= TILE_ROWS;
    }

    /** New tokens per tile: whole tokens, all {@code group} heads of each (flash_prefill_tile_tokens). */
    static int tileTokens(int group) {
        return TILE_ROWS / group;
    }

    /** Tiles per sequence, the grid's x (flash_prefill_tiles), for the batch's longest chunk. */
    static int tiles(int longestChunk, int group) {
        int perTile = tileTokens(group);
        return (longestChunk + perTile - 1) / perTile;
    }

    /** The most new tokens of any sequence in the plan (the kernel's max_seq_tokens). */
    static int longestChunk(BatchPlan plan) {
        int[] seqStart = plan.seqStart();
        int longest = 0;
        for (int s = 0; s < plan.sequenceCount(); s++) {
            longest = Math.max(longest, seqStart[s + 1] - seqStart[s]);
        }
        return longest;
    }

    /**
     * Whether the whole step's attention should run on the flash kernel: the shapes are supported,
     * and sequences with at least {@link #MIN_CHUNK_TOKENS} new tokens hold at least half of the
     * step's tokens. NOTE: one kernel takes the whole batch (the output is one tensor and neither
     * kernel takes a subset of sequences), so decode tokens mixed into a prefill-heavy step run as
     * one-token tiles of the flash kernel: correct, with the padded rows' work wasted.
     */
    static boolean worthIt(BatchPlan plan, int headDim, int group) {
        if (!supports(headDim, group) || plan.tokenCount() == 0) {
            return false;
        }
        int[] seqStart = plan.seqStart();
        long inLongChunks = 0;
        for (int s = 0; s < plan.sequenceCount(); s++) {
            int chunk = seqStart[s + 1] - seqStart[s];
            if (chunk >= MIN_CHUNK_TOKENS) {
                inLongChunks += chunk;
            }
        }
        return 2 * inLongChunks >= plan.tokenCount() && inLongChunks > 0;
    }
}
