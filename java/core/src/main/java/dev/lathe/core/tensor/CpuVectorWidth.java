package dev.lathe.core.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float vector shape every CPU kernel uses, the weight formats' and the backend's alike, so
 * that one switch ({@code -Dlathe.cpu.vectorBits=256}) moves all of them.
 */
public final class CpuVectorWidth {
    private CpuVectorWidth() {
    }

    // NOTE: 512 bits (16 lanes) where the machine prefers at least that, else 256 (8 lanes). The
    // block kernels need LANES to divide 16 and be at least 8 (BlockLanes), so a 128-bit machine
    // (NEON) also runs the 256-bit species: correct, not fast there.
    // -Dlathe.cpu.vectorBits=256 forces the 8-lane kernels on an AVX-512 machine (to test them).
    public static final VectorSpecies<Float> FLOATS =
            FloatVector.SPECIES_PREFERRED.length() >= 16 && Integer.getInteger("lathe.cpu.vectorBits", 512) >= 512
                    ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;

    /** Bits per vector: 512 or 256. */
    public static int bits() {
        return FLOATS.vectorBitSize();
    }
}
