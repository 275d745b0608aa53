package dev.lathe.tools.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.tensor.LatheFormat;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@link SensitivityMixing}: the output-error measure, the greedy choice within the budget, and bad budgets. */
class SensitivityMixingTest {
    private static final LatheFormat LOW = LatheFormat.intGroup(4, 32, true);

    private static double bitsPerWeight(List<SensitivityMixing.Candidate> candidates, Set<String> upgraded) {
        long bytes = 0;
        long params = 0;
        for (SensitivityMixing.Candidate c : candidates) {
            bytes += upgraded.contains(c.name()) ? c.highBytes() : c.lowBytes();
            params += c.params();
        }
        return 8.0 * bytes / params;
    }

    private static double[] hessianOf(float[] x, int tokens, int k) {
        double[] h = new double[k * k];
        Gptq.accumulateHessian(h, x, 0, tokens, k);
        Gptq.symmetrize(h, k);
        return h;
    }

    @Test
    void theBudgetIsRespectedAndMoreBudgetNeverRaisesTheError() {
        Random random = new Random(7);
        List<SensitivityMixing.Candidate> candidates = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            int rows = 64 * (1 + random.nextInt(4));
            int k = 64 * (1 + random.nextInt(4));
            candidates.add(new SensitivityMixing.Candidate("t" + i, (long) rows * k, LOW.matrixBytes(rows, k),
                    SensitivityMixing.HIGH.matrixBytes(rows, k), random.nextDouble() * 0.1, random.nextDouble() * 0.001));
        }
        Set<String> all = new HashSet<>();
        candidates.forEach(c -> all.add(c.name()));
        double lowBpw = bitsPerWeight(candidates, Set.of());
        double highBpw = bitsPerWeight(candidates, all);
        double previousError = Double.POSITIVE_INFINITY;
        for (double budget = lowBpw; budget <= highBpw; budget += 0.125) {
            Set<String> upgraded = SensitivityMixing.choose(candidates, budget);
            assertTrue(bitsPerWeight(candidates, upgraded) <= budget + 1e-9, "budget " + budget);
            double error = 0;
            for (SensitivityMixing.Candidate c : candidates) {
                error += upgraded.contains(c.name()) ? c.highError() : c.lowError();
            }
            assertTrue(error <= previousError + 1e-12, "budget " + budget);
            previousError = error;
        }
        assertEquals(Set.of(), SensitivityMixing.choose(candidates, lowBpw));
        assertEquals(all, SensitivityMixing.choose(candidates, highBpw));
    }

    /**
     * Three tensors of one shape measured on the same activations; one has a few large outliers,
     * which INT4 groups of 32 represent badly. With room for exactly one upgrade it gets it.
     */
    @Test
    void withRoomForOneUpgradeTheMostSensitiveTensorGetsIt() {
        Random random = new Random(11);
        int rows = 64;
        int k = 128;
        int tokens = 512;
        float[] x = new float[tokens * k];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        double[] h = hessianOf(x, tokens, k);
        List<SensitivityMixing.Candidate> candidates = new ArrayList<>();
        for (String name : new String[] {"a", "outliers", "b"}) {
            float[] w = new float[rows * k];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) random.nextGaussian() * 0.02f;
                if (name.equals("outliers") && i % 29 == 0) {
                    w[i] *= 40; // one per group or so: its scale crushes the group's other values
                }
            }
            candidates.add(SensitivityMixing.measure(name, w, rows, k, LOW, h));
        }
        for (SensitivityMixing.Candidate c : candidates) {
            assertTrue(c.highError() < c.lowError(), c.toString());
        }
        SensitivityMixing.Candidate first = candidates.getFirst();
        long params = 3L * rows * k;
        double oneUpgrade = 8.0 * (2 * first.lowBytes() + first.highBytes()) / params;
        assertEquals(Set.of("outliers"), SensitivityMixing.choose(candidates, oneUpgrade));
        assertEquals(Set.of("outliers"), SensitivityMixing.choose(candidates, oneUpgrade + 0.01)); // not enough for two
    }

    @Test
    void relativeOutputErrorIsZeroForAnExactCopyAndOneForZero() {
        Random random = new Random(3);
        int rows = 8;
        int k = 32;
        float[] x = new float[100 * k];
        float[] w = new float[rows * k];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        double[] h = hessianOf(x, 100, k);
        assertEquals(0, SensitivityMixing.relativeOutputError(w, w.clone(), rows, k, h), 0);
        assertEquals(1, SensitivityMixing.relativeOutputError(w, new float[w.length], rows, k, h), 1e-9);
        // against a direct sum over tokens of (W - Q) x
        float[] q = w.clone();
        for (int i = 0; i < q.length; i += 3) {
            q[i] += 0.1f;
        }
        double error = 0;
        double signal = 0;
        for (int t = 0; t < 100; t++) {
            for (int r = 0; r < rows; r++) {
                double e = 0;
                double s = 0;
                for (int i = 0; i < k; i++) {
                    e += (w[r * k + i] - q[r * k + i]) * (double) x[t * k + i];
                    s += w[r * k + i] * (double) x[t * k + i];
                }
                error += e * e;
                signal += s * s;
            }
        }
        assertEquals(error / signal, SensitivityMixing.relativeOutputError(w, q, rows, k, h), 1e-6 * error / signal);
    }

    @Test
    void aBudgetOutsideTheFormatsRangeIsAClearError() {
        List<SensitivityMixing.Candidate> candidates = List.of(
                new SensitivityMixing.Candidate("t", 64 * 64, LOW.matrixBytes(64, 64), SensitivityMixing.HIGH.matrixBytes(64, 64), 0.1, 0.001));
        double low = 8.0 * LOW.matrixBytes(64, 64) / (64 * 64);
        double high = 8.0 * SensitivityMixing.HIGH.matrixBytes(64, 64) / (64 * 64);
        for (double bad : new double[] {low - 0.01, high + 0.01, Double.NaN, 2}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SensitivityMixing.choose(candidates, bad));
            assertTrue(e.getMessage().contains("--bpw-budget") && e.getMessage().contains("outside"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> SensitivityMixing.choose(List.of(), 5));
    }
}
