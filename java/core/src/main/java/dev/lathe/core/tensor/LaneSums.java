package dev.lathe.core.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The sum of a float vector's lanes in one fixed order, whatever compiled the code.
 *
 * <p>NOTE: {@code reduceLanes(VectorOperators.ADD)} is allowed any order, and HotSpot's C2
 * intrinsic adds the lanes in another order than the interpreter and C1 do: the same 16 floats
 * summed to different last bits before and after a kernel was compiled (/tmp check, 256 vectors of
 * 16 and a 4096-long dot product, -XX:TieredStopAtLevel=1 vs C2). A model's first forward pass runs
 * partly before C2, so the same prompt gave different logits on its first and later runs in one
 * JVM (stories260K perplexity, 6 runs: run 0 differed from runs 1-5), and AWQ quantizing twice
 * gave different weights. Here the lanes are added as a fixed tree of lane-wise additions (lane i
 * plus lane i + n/2, then i + n/4, ...), which every tier computes alike; it costs about what the
 * intrinsic does (log2(n) permutes and adds).
 */
public final class LaneSums {
    private LaneSums() {
    }

    // NOTE: one static final field per shuffle (not an array): C2 folds a constant shuffle into the
    // permute; a shuffle read from an array element is a runtime object and cost Q4_0 decode ~20%.
    private static final VectorShuffle<Float> X16_8 = rotation(FloatVector.SPECIES_512, 8);
    private static final VectorShuffle<Float> X16_4 = rotation(FloatVector.SPECIES_512, 4);
    private static final VectorShuffle<Float> X16_2 = rotation(FloatVector.SPECIES_512, 2);
    private static final VectorShuffle<Float> X16_1 = rotation(FloatVector.SPECIES_512, 1);
    private static final VectorShuffle<Float> X8_4 = rotation(FloatVector.SPECIES_256, 4);
    private static final VectorShuffle<Float> X8_2 = rotation(FloatVector.SPECIES_256, 2);
    private static final VectorShuffle<Float> X8_1 = rotation(FloatVector.SPECIES_256, 1);

    /** The shuffle bringing lane {@code (i + shift) % n} to lane i. */
    private static VectorShuffle<Float> rotation(VectorSpecies<Float> species, int shift) {
        int n = species.length();
        int[] index = new int[n];
        for (int i = 0; i < n; i++) {
            index[i] = (i + shift) % n;
        }
        return VectorShuffle.fromArray(species, index, 0);
    }

    /** The sum of {@code v}'s lanes, added in a fixed tree (see the class comment). */
    public static float sum(FloatVector v) {
        if (v.species() == FloatVector.SPECIES_512) {
            v = v.add(v.rearrange(X16_8));
            v = v.add(v.rearrange(X16_4));
            v = v.add(v.rearrange(X16_2));
            return v.add(v.rearrange(X16_1)).lane(0);
        }
        if (v.species() == FloatVector.SPECIES_256) {
            v = v.add(v.rearrange(X8_4));
            v = v.add(v.rearrange(X8_2));
            return v.add(v.rearrange(X8_1)).lane(0);
        }
        float sum = 0; // other widths are not used by the kernels (CpuVectorWidth): plain order
        for (int i = 0; i < v.length(); i++) {
            sum += v.lane(i);
        }
        return sum;
    }

    /** {@code sums[k] = sum(acc_k)} for the four accumulators of a format's four-input kernel ({@code dot4}). */
    static void sum4(FloatVector acc0, FloatVector acc1, FloatVector acc2, FloatVector acc3, float[] sums) {
        sums[0] = sum(acc0);
        sums[1] = sum(acc1);
        sums[2] = sum(acc2);
        sums[3] = sum(acc3);
    }
}
