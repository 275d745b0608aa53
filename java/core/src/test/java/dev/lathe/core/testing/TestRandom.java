package dev.lathe.core.testing;

import java.util.Random;
import java.util.SplittableRandom;

/** Fresh random inputs per run, with the seed printed so a failure can be replayed (-Dlathe.seed=S). */
public final class TestRandom {
    private TestRandom() {
    }

    public static Random create(String testName) {
        long seed = Long.getLong("lathe.seed", new SplittableRandom().nextLong());
        System.out.println("[seed] " + testName + ": -Dlathe.seed=" + seed);
        return new Random(seed);
    }

    /** Awkward sizes: not powers of two, including 1. */
    public static final int[] AWKWARD_SIZES = {1, 3, 17, 111, 769};
}
