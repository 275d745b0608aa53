package dev.lathe.core.generate;

import dev.lathe.core.sample.LogSumExp;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.LlamaModel;

import java.util.Arrays;

/**
 * Early exit at inference (CALM, Schuster et al. 2022): during a decode step, after each of the
 * chosen layers the final norm and output head read the hidden state; when the most likely token's
 * softmax probability reaches the threshold, that head's logits are the step's and the remaining
 * layers are skipped. The head is the one self-speculation drafts with
 * ({@link LlamaModel.ForwardPass}).
 *
 * <p>K/V of the skipped layers: later tokens attend to every layer's K/V at this position, so
 * they are filled from the exited hidden state, projected through each skipped layer's attention
 * norm and K/V weights ({@link LlamaModel.ForwardPass#fillSkippedKv}), as CALM propagates the
 * exited state. What stays exact: every layer has K/V at every position, and a step that does not
 * exit is the full model on that cache. What is approximate: an exited token comes from a shallower
 * head, and later tokens see approximate K/V at exited positions, so the text can drift from the
 * full model's; the agreement is measured, not promised.
 *
 * <p>Confidence is the maximum softmax probability of the raw logits (temperature 1, no
 * penalties), whatever the sampling settings: a property of the model, not of the sampler.
 *
 * @param threshold  exit when the confidence is at least this, in (0, 1]
 * @param exitLayers after how many layers to check, ascending, each in [1, layers)
 */
public record EarlyExit(float threshold, int[] exitLayers) {

    public EarlyExit {
        if (!(threshold > 0 && threshold <= 1)) {
            throw new IllegalArgumentException("--early-exit " + threshold + ": the threshold must be in (0, 1]");
        }
        if (exitLayers.length == 0) {
            throw new IllegalArgumentException("early exit needs at least one layer to check after");
        }
        exitLayers = exitLayers.clone();
        for (int i = 0; i < exitLayers.length; i++) {
            if (exitLayers[i] < 1 || (i > 0 && exitLayers[i] <= exitLayers[i - 1])) {
                throw new IllegalArgumentException("--early-exit-layers " + Arrays.toString(exitLayers)
                        + ": expected ascending layer counts, each at least 1");
            }
        }
    }

    /**
     * NOTE: the default checks after half and three quarters of the layers (5 layers: after 2 and
     * 3). Each check costs an output head (vocab x dim multiply-adds, several layers' worth on a
     * 32k vocabulary), so checking after every layer would eat the savings.
     */
    public static int[] defaultLayers(int layers) {
        if (layers < 2) {
            throw new IllegalArgumentException("early exit needs a model of at least 2 layers, this one has " + layers);
        }
        int half = Math.max(1, layers / 2);
        int threeQuarters = Math.min(layers - 1, 3 * layers / 4);
        return threeQuarters > half ? new int[] {half, threeQuarters} : new int[] {half};
    }

    /** Checks the exit layers against a model of {@code layers} layers. */
    public void requireFits(int layers) {
        int last = exitLayers[exitLayers.length - 1];
        if (last >= layers) {
            throw new IllegalArgumentException("--early-exit-layers: " + last + " is not below the model's " + layers
                    + " layers (exiting after the last layer is no exit)");
        }
    }

    /** A step's logits {@code [1, vocab]} and the layers it ran. */
    public record Step(Tensor logits, int layersRun) {
    }

    /**
     * One decode step of {@code model} over {@code plan} (one sequence, logits for one row), exiting
     * after the first exit layer whose head is confident enough.
     */
    public Step forward(LlamaModel model, BatchPlan plan, KvCache cache) {
        if (plan.logitsIndex().length != 1) {
            throw new IllegalArgumentException("early exit decides per token: the plan must ask for one row of logits, not "
                    + plan.logitsIndex().length);
        }
        int layers = model.config().layers();
        LlamaModel.ForwardPass pass = model.begin(plan, cache);
        float[] row = new float[model.config().vocabSize()];
        for (int exit : exitLayers) {
            pass.runLayersTo(exit);
            Tensor logits = pass.logits();
            model.backend().copyRowToHost(logits, 0, row);
            if (maxProbability(row) >= threshold) {
                pass.fillSkippedKv(layers);
                return new Step(logits, exit);
            }
        }
        pass.runLayersTo(layers);
        return new Step(pass.logits(), layers);
    }

    /** The largest softmax probability of {@code logits}: 1 / sum(exp(l - max)). */
    static double maxProbability(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        return Math.exp(max - LogSumExp.of(logits));
    }
}
