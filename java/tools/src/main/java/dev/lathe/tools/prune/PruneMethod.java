package dev.lathe.tools.prune;

/** How weights are chosen for unstructured and N:M pruning (see {@link WeightPruning}). */
public enum PruneMethod {
    /** |w| within each row or N:M group; no calibration. */
    MAGNITUDE,
    /** |w| times the input's L2 norm over calibration tokens. */
    WANDA,
    /** OBS mask and weight update from the calibration Hessian, block by block. */
    SPARSEGPT
}
