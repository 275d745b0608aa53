package dev.lathe.core.backend;

import dev.lathe.core.model.RopeStyle;
import dev.lathe.core.tensor.WeightMatrix;
import java.util.function.Function;

/**
 * The ops a Llama-family model needs, implemented once per device (DESIGN.md, "The Backend SPI").
 * The model is written against this interface only; the CPU backend is the reference every other
 * backend is tested against. Activations are f32 {@link Tensor}s {@code [tokens, features]}.
 */
public interface Backend extends AutoCloseable {

    /** Short name, e.g. {@code "cpu"}, {@code "cuda"}. */
    String name();

    /** A one-line description of the device and its settings (threads, vector width, ...). */
    String describe();

    /** A zero-filled activation buffer {@code [rows, cols]}. */
    Tensor allocate(int rows, int cols);

    /**
     * Prepares a weight for this backend, once, at load: a GPU backend repacks and copies it; the
     * CPU backend re-lays Q8_0, Q4_0, Q4_K, F16 and BF16 in row tiles for its kernels and returns other formats as
     * they are. The result answers {@code type()}, {@code data()} and {@code dequantizeRow} as the
     * source does.
     */
    WeightMatrix upload(WeightMatrix weight);

    /**
     * Prepares a weight that is only read by rows ({@link #embed}), never multiplied: the token
     * embedding when the output matrix is separate. The CPU backend keeps it as it is (its tiles
     * would only cost memory); by default, as {@link #upload}.
     */
    default WeightMatrix uploadTable(WeightMatrix table) {
        return upload(table);
    }

    /** f32 K and V pools for {@code layers} layers of {@code [numBlocks, blockSize, kvHeads, headDim]} each. */
    KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim);

    /**
     * K and V pools of element type {@code dtype}. A backend that stores only f32 keeps this default:
     * any other type is an IllegalArgumentException naming the backend (the CLI prints it as one line), never a silent f32.
     */
    default KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, KvDtype dtype) {
        if (dtype != KvDtype.F32) {
            throw new IllegalArgumentException("the " + name() + " backend's KV cache is f32 only; --kv-dtype "
                    + dtype.label() + " is not supported there");
        }
        return allocateKvCache(layers, numBlocks, blockSize, kvHeads, headDim);
    }

    /**
     * Runs one forward step: {@code step.apply(plan)} queues the ops and returns the logits
     * {@code [plan.logitsIndex().length, vocab]}. A backend may instead record the ops of a decode
     * step once and replay them (the CUDA backend's graphs): it may then call {@code step} with a
     * plan padded by extra one-token sequences (writing their K/V only to a slot no sequence
     * owns), and later steps with the same {@code key} and {@code cache} may not call
     * {@code step} at all. So {@code step} must queue the same ops for plans of the same shape,
     * read host arrays only from the plan it is given (any other array is taken as a constant),
     * and the returned logits are valid until the next step with the same key.
     *
     * @param key identifies what {@code step} computes besides its plan (the model, how many
     *            layers): equal keys must mean the same ops
     */
    default Tensor forwardStep(BatchPlan plan, KvCache cache, Object key, Function<BatchPlan, Tensor> step) {
        return step.apply(plan);
    }

    /** {@code out[t, :] = table[tokens[t], :]}; out {@code [T, dim]}, table {@code [vocab, dim]}. */
    void embed(Tensor out, WeightMatrix table, int[] tokens);

    /** {@code out[t, :] = x[t, :] / rms(x[t, :]) * weight}; weight {@code [1, cols]}. out may be x. */
    void rmsNorm(Tensor out, Tensor x, WeightMatrix weight, float eps);

    /** {@code out[t, r] = sum_i W[r, i] * x[t, i]}: out {@code [T, W.rows]}, x {@code [T, W.cols]}. */
    void matmul(Tensor out, Tensor x, WeightMatrix w);

    /**
     * {@link #matmul} of one input by several weights, {@code outs[i] = x * weights[i]^T}: the
     * projections that read the same hidden state (Q, K and V; gate and up). A backend may run them
     * as one unit of work; each output is the separate matmul's, bit for bit.
     */
    default void matmuls(Tensor[] outs, Tensor x, WeightMatrix[] weights) {
        if (outs.length != weights.length) {
            throw new IllegalArgumentException(outs.length + " outputs for " + weights.length + " weights");
        }
        for (int i = 0; i < outs.length; i++) {
            matmul(outs[i], x, weights[i]);
        }
    }

    /** {@code x[t, :] += bias}; bias {@code [1, cols]}. */
    void addBias(Tensor x, WeightMatrix bias);

    /**
     * Rotates each head of {@code x [T, heads * headDim]} by its token's position: pair {@code i}
     * turns by {@code positions[t] * invFreq[i]}; {@code style} says which dimensions form pair i.
     */
    void rope(Tensor x, int heads, int headDim, int[] positions, float[] invFreq, RopeStyle style);

    /** Writes each new token's K and V ({@code [T, kvHeads * headDim]}) into its cache slot. */
    void writeKv(KvCache cache, int layer, Tensor k, Tensor v, int[] slotMapping);

    /**
     * Causal grouped-query attention of each new token over its sequence's cached keys and values
     * (including itself): q {@code [T, heads * headDim]}, out {@code [T, heads * headDim]}.
     */
    void attention(Tensor out, Tensor q, KvCache cache, int layer, BatchPlan plan, int heads, float scale);

    /** {@code gate = silu(gate) * up}, element-wise. */
    void swiglu(Tensor gate, Tensor up);

    /** {@code x += y}, element-wise. */
    void add(Tensor x, Tensor y);

    /** {@code out[i, :] = x[rows[i], :]}. */
    void gatherRows(Tensor out, Tensor x, int[] rows);

    /** Copies row {@code row} of {@code t} into {@code out} (host memory). */
    void copyRowToHost(Tensor t, int row, float[] out);

    /**
     * Speculative verification where the logits are, for one sequence: the lossless rule of
     * {@code dev.lathe.core.spec.SpeculativeVerifier} with temperature, top-k and top-p only (no
     * penalties, no min-p), its uniforms drawn from a counter-based generator keyed by
     * {@code seed} and {@code step}. Returns {accepted drafts, next token}, or null when this
     * backend verifies on the host (the CPU backend: the caller runs SpeculativeVerifier).
     *
     * @param logits       {@code [k + 1, vocab]} the target's logits at the k+1 verify positions
     * @param draftTokens  {@code [k]}, k >= 1
     * @param draftProbs   {@code [k][vocab]} the draft's q, or null when each q is one-hot at its token
     */
    default int[] verifyDraft(Tensor logits, int[] draftTokens, float[][] draftProbs, long seed, long step,
                              float temperature, int topK, float topP) {
        return null;
    }

    @Override
    void close();
}
