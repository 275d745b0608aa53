package dev.lathe.tools.prune;

import java.nio.file.Path;
import java.util.Objects;

/**
 * What {@code lathe prune} was asked for, validated on construction. Either weight sparsity
 * ({@code target}, by {@code method}) or structured cuts (any of {@code heads}, {@code ffn},
 * {@code dropLayers}), not both in one run: a structured cut changes the shapes the sparsity
 * masks would be computed on, so the two are separate passes (prune the cut model again).
 *
 * @param method       unstructured / N:M rule
 * @param target       the sparsity, or null for structured cuts only
 * @param heads        fraction of KV heads (each with its query group) removed from every layer, 0 for none
 * @param ffn          fraction of FFN neurons removed from every layer, 0 for none
 * @param dropLayers   decoder blocks removed, 0 for none
 * @param calibration  calibration text (needed by everything but magnitude)
 * @param calibSamples calibration windows
 * @param seqLen       tokens per calibration window
 * @param store        how the pruned linears are written
 * @param int4Group    0 to keep values at their precision; else quantize kept values to INT4 with
 *                     this group size (dense columns) in the same pass
 */
public record PruneOptions(PruneMethod method, SparsityTarget target, double heads, double ffn, int dropLayers,
                           Path calibration, int calibSamples, int seqLen, Store store, int int4Group) {

    /** How pruned linears are stored: dense (zeros written out) or the 2:4 compressed format. */
    public enum Store { DENSE, SPARSE24 }

    public PruneOptions {
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(store, "store");
        boolean structured = heads != 0 || ffn != 0 || dropLayers != 0;
        if (target == null && !structured) {
            throw new IllegalArgumentException("nothing to prune: pass --sparsity F, --pattern N:M, --heads F, --ffn F or --drop-layers N");
        }
        if (target != null && structured) {
            throw new IllegalArgumentException("--sparsity/--pattern and --heads/--ffn/--drop-layers are separate passes:"
                    + " run lathe prune twice (the masks depend on the shapes the cuts change)");
        }
        if (heads != 0 && !(heads > 0 && heads < 1)) {
            throw new IllegalArgumentException("--heads must be a fraction in (0, 1), not " + heads);
        }
        if (ffn != 0 && !(ffn > 0 && ffn < 1)) {
            throw new IllegalArgumentException("--ffn must be a fraction in (0, 1), not " + ffn);
        }
        if (dropLayers < 0) {
            throw new IllegalArgumentException("--drop-layers must be positive, not " + dropLayers);
        }
        if (store == Store.SPARSE24 && (target == null || !target.is24())) {
            throw new IllegalArgumentException("--store sparse24 needs --pattern 2:4");
        }
        if (int4Group != 0) {
            if (target == null) {
                throw new IllegalArgumentException("--int4 quantizes the kept weights of --sparsity/--pattern pruning");
            }
            int unit = store == Store.SPARSE24 ? 64 : 32;
            if (int4Group < unit || int4Group % unit != 0) {
                throw new IllegalArgumentException("--int4 group size must be a multiple of " + unit
                        + (store == Store.SPARSE24 ? " for the 2:4 INT4 format" : "") + ", not " + int4Group);
            }
        }
        if (structured || method != PruneMethod.MAGNITUDE) {
            if (calibration == null) {
                throw new IllegalArgumentException((target != null ? method.name().toLowerCase() : "structured pruning")
                        + " needs calibration text: pass --calib FILE");
            }
            if (calibSamples < 1) {
                throw new IllegalArgumentException("--calib-samples must be at least 1, not " + calibSamples);
            }
            if (seqLen < 2) {
                throw new IllegalArgumentException("--seq-len must be at least 2, not " + seqLen);
            }
        }
    }

    /** The store a target gets when none is named: 2:4 compressed for 2:4, dense otherwise. */
    public static Store defaultStore(SparsityTarget target) {
        return target != null && target.is24() ? Store.SPARSE24 : Store.DENSE;
    }

    public boolean structured() {
        return target == null;
    }
}
