package dev.lathe.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lathe.core.testing.TestRandom;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/** LaneSums adds the lanes in the documented tree, bit for bit, at both widths. */
class LaneSumsTest {

    /** The tree in scalar code: lane i plus lane i + n/2, then i + n/4, ..., lane 0 at the end. */
    private static float tree(float[] lanes) {
        float[] v = lanes.clone();
        for (int shift = v.length / 2; shift > 0; shift /= 2) {
            float[] next = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                next[i] = v[i] + v[(i + shift) % v.length];
            }
            v = next;
        }
        return v[0];
    }

    @Test
    void sumsInTheFixedTreeAtBothWidths() {
        Random random = TestRandom.create("sumsInTheFixedTreeAtBothWidths");
        for (VectorSpecies<Float> species : java.util.List.of(FloatVector.SPECIES_512, FloatVector.SPECIES_256)) {
            float[] lanes = new float[species.length()];
            for (int trial = 0; trial < 2000; trial++) {
                for (int i = 0; i < lanes.length; i++) {
                    // magnitudes over eight decades, so the order of the additions shows in the last bits
                    lanes[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(8) - 4));
                }
                float expected = tree(lanes);
                assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(LaneSums.sum(FloatVector.fromArray(species, lanes, 0))),
                        species + " trial " + trial);
            }
        }
    }
}
