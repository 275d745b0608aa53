package dev.lathe.core.model;

import dev.lathe.core.backend.Backend;
import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.RowTiledMatrix;
import dev.lathe.core.tensor.WeightMatrix;
import java.util.function.ToLongFunction;

/**
 * The Llama-family decoder (Llama 2/3, Mistral, Qwen2, TinyLlama, SmolLM), written once against
 * the {@link Backend} SPI: RMSNorm, RoPE, grouped-query attention over a paged KV cache, SwiGLU,
 * tied or separate output head. It never sees a weight's block layout.
 */
public final class LlamaModel {
    private final LlamaConfig config;
    private final Backend backend;
    private final float[] ropeInvFreq; // [headDim / 2]

    private final WeightMatrix tokenEmbedding; // (vocab, dim)
    private final WeightMatrix[] attnNorm;     // [layer] (1, dim)
    private final WeightMatrix[] wq;           // [layer] (heads * headDim, dim)
    private final WeightMatrix[] wk;           // [layer] (kvHeads * headDim, dim)
    private final WeightMatrix[] wv;           // [layer] (kvHeads * headDim, dim)
    private final WeightMatrix[] bq;           // [layer] (1, heads * headDim), Qwen2 only
    private final WeightMatrix[] bk;           // [layer] (1, kvHeads * headDim), Qwen2 only
    private final WeightMatrix[] bv;           // [layer] (1, kvHeads * headDim), Qwen2 only
    private final WeightMatrix[] wo;           // [layer] (dim, heads * headDim)
    private final WeightMatrix[] ffnNorm;      // [layer] (1, dim)
    private final WeightMatrix[] wGate;        // [layer] (ffnDim, dim)
    private final WeightMatrix[] wUp;          // [layer] (ffnDim, dim)
    private final WeightMatrix[] wDown;        // [layer] (dim, ffnDim)
    private final WeightMatrix outputNorm;     // (1, dim)
    private final WeightMatrix output;         // (vocab, dim); the embedding table when tied

    public LlamaModel(LoadedModel source, Backend backend) {
        this.config = source.config();
        this.backend = backend;
        LlamaConfig c = config;
        int layers = c.layers();
        boolean separateOutput = source.optionalTensor("output.weight") != null && !c.tiedEmbeddings();
        // Not tied, the embedding is only read a row at a time (embed), never multiplied.
        WeightMatrix embedding = checked(source, "token_embd.weight", c.vocabSize(), c.dim());
        tokenEmbedding = separateOutput ? backend.uploadTable(embedding) : backend.upload(embedding);
        attnNorm = new WeightMatrix[layers];
        wq = new WeightMatrix[layers];
        wk = new WeightMatrix[layers];
        wv = new WeightMatrix[layers];
        bq = new WeightMatrix[layers];
        bk = new WeightMatrix[layers];
        bv = new WeightMatrix[layers];
        wo = new WeightMatrix[layers];
        ffnNorm = new WeightMatrix[layers];
        wGate = new WeightMatrix[layers];
        wUp = new WeightMatrix[layers];
        wDown = new WeightMatrix[layers];
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            attnNorm[l] = weight(source, p + "attn_norm.weight", 1, c.dim());
            wq[l] = weight(source, p + "attn_q.weight", c.qDim(), c.dim());
            wk[l] = weight(source, p + "attn_k.weight", c.kvDim(), c.dim());
            wv[l] = weight(source, p + "attn_v.weight", c.kvDim(), c.dim());
            if (c.qkvBias()) {
                bq[l] = weight(source, p + "attn_q.bias", 1, c.qDim());
                bk[l] = weight(source, p + "attn_k.bias", 1, c.kvDim());
                bv[l] = weight(source, p + "attn_v.bias", 1, c.kvDim());
            }
            wo[l] = weight(source, p + "attn_output.weight", c.dim(), c.qDim());
            ffnNorm[l] = weight(source, p + "ffn_norm.weight", 1, c.dim());
            wGate[l] = weight(source, p + "ffn_gate.weight", c.ffnDim(), c.dim());
            wUp[l] = weight(source, p + "ffn_up.weight", c.ffnDim(), c.dim());
            wDown[l] = weight(source, p + "ffn_down.weight", c.dim(), c.ffnDim());
        }
        outputNorm = weight(source, "output_norm.weight", 1, c.dim());
        output = separateOutput ? weight(source, "output.weight", c.vocabSize(), c.dim()) : tokenEmbedding;

        WeightMatrix freqFactors = source.optionalTensor("rope_freqs.weight");
        float[] factors = null;
        if (freqFactors != null) {
            checkShape(source, freqFactors, 1, c.headDim() / 2);
            factors = new float[c.headDim() / 2];
            freqFactors.dequantizeRow(0, factors, 0);
        }
        ropeInvFreq = RopeFrequencies.compute(c.headDim(), c.ropeTheta(), c.ropeScaling(), factors);
    }

    private WeightMatrix weight(LoadedModel source, String name, int rows, int cols) {
        return backend.upload(checked(source, name, rows, cols));
    }

    /** Tensor {@code name} of the file, its shape checked against the config. */
    private static WeightMatrix checked(LoadedModel source, String name, int rows, int cols) {
        WeightMatrix w = source.tensor(name);
        checkShape(source, w, rows, cols);
        return w;
    }

    private static void checkShape(LoadedModel source, WeightMatrix w, int rows, int cols) {
        // A 1-D tensor of n values may come as (1, n) or (n, 1) depending on the reader.
        boolean vector = rows == 1 && (long) w.rows() * w.cols() == cols;
        if (!vector && (w.rows() != rows || w.cols() != cols)) {
            throw new ModelFormatException(source.source(), "tensor " + w.name() + " has shape [" + w.rows() + ", "
                    + w.cols() + "] but the config implies [" + rows + ", " + cols + "]");
        }
    }

    public LlamaConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    /** An f32 KV cache for {@code numBlocks} blocks of {@code blockSize} tokens, every layer. */
    public KvCache newKvCache(int numBlocks, int blockSize) {
        return newKvCache(numBlocks, blockSize, KvDtype.F32);
    }

    /** A KV cache of element type {@code dtype} for {@code numBlocks} blocks of {@code blockSize} tokens, every layer. */
    public KvCache newKvCache(int numBlocks, int blockSize, KvDtype dtype) {
        return backend.allocateKvCache(config.layers(), numBlocks, blockSize, config.kvHeads(), config.headDim(), dtype);
    }

    /**
     * One forward step over {@code plan}'s new tokens: writes their K/V into {@code cache} and
     * returns logits {@code [plan.logitsIndex().length, vocab]} (no rows when none are asked for).
     */
    public Tensor forward(BatchPlan plan, KvCache cache) {
        return forward(plan, cache, config.layers());
    }

    /**
     * Layers {@code [0, layers)} only, then the final norm and output head on the hidden state
     * they leave: the whole model when {@code layers == config().layers()}, the layer-skip draft
     * of self-speculation otherwise. Writes K/V of those layers only, so {@code cache} needs at
     * least {@code layers} layers (a draft may keep a smaller cache of its own).
     */
    public Tensor forward(BatchPlan plan, KvCache cache, int layers) {
        return backend.forwardStep(plan, cache, new StepKey(this, layers), p -> {
            ForwardPass pass = begin(p, cache);
            pass.runLayersTo(layers);
            return pass.logits();
        });
    }

    // What a forward step computes besides its plan and cache (Backend.forwardStep's key).
    private record StepKey(LlamaModel model, int layers) {
    }

    /**
     * Starts a forward pass that the caller drives layer by layer (early exit): the embedding is
     * looked up, no layer has run yet.
     */
    public ForwardPass begin(BatchPlan plan, KvCache cache) {
        return new ForwardPass(plan, cache);
    }

    /**
     * One forward pass in progress: the residual stream after {@link #layersDone()} layers, and
     * the scratch tensors every layer reuses. What {@link #forward} does in one call, in steps, so
     * that "the first L layers + the head" lives once for self-speculation and early exit alike.
     */
    public final class ForwardPass {
        private final BatchPlan plan;
        private final KvCache cache;
        private final float attentionScale = (float) (1.0 / Math.sqrt(config.headDim()));
        private final Tensor x;    // residual stream [T, dim]
        private final Tensor h;    // normed input     [T, dim]
        private final Tensor q;    // [T, heads * headDim]
        private final Tensor k;    // [T, kvHeads * headDim]
        private final Tensor v;    // [T, kvHeads * headDim]
        private final Tensor att;  // attention output [T, heads * headDim]
        private final Tensor proj; // block output     [T, dim]
        private final Tensor gate; // [T, ffnDim]
        private final Tensor up;   // [T, ffnDim]
        private int layersDone;

        private ForwardPass(BatchPlan plan, KvCache cache) {
            LlamaConfig c = config;
            int tokens = plan.tokenCount();
            this.plan = plan;
            this.cache = cache;
            x = backend.allocate(tokens, c.dim());
            h = backend.allocate(tokens, c.dim());
            q = backend.allocate(tokens, c.qDim());
            k = backend.allocate(tokens, c.kvDim());
            v = backend.allocate(tokens, c.kvDim());
            att = backend.allocate(tokens, c.qDim());
            proj = backend.allocate(tokens, c.dim());
            gate = backend.allocate(tokens, c.ffnDim());
            up = backend.allocate(tokens, c.ffnDim());
            backend.embed(x, tokenEmbedding, plan.tokens());
        }

        /** Layers that have run so far. */
        public int layersDone() {
            return layersDone;
        }

        /** Runs layers {@code [layersDone(), end)}. */
        public void runLayersTo(int end) {
            checkLayerEnd(end);
            LlamaConfig c = config;
            for (int l = layersDone; l < end; l++) {
                // Attention block.
                backend.rmsNorm(h, x, attnNorm[l], c.rmsNormEps());
                writeKeysAndValues(l, true);
                if (c.qkvBias()) {
                    backend.addBias(q, bq[l]);
                }
                backend.rope(q, c.heads(), c.headDim(), plan.positions(), ropeInvFreq, c.ropeStyle());
                backend.attention(att, q, cache, l, plan, c.heads(), attentionScale);
                backend.matmul(proj, att, wo[l]);
                backend.add(x, proj);

                // Feed-forward block (SwiGLU).
                backend.rmsNorm(h, x, ffnNorm[l], c.rmsNormEps());
                backend.matmuls(new Tensor[] {gate, up}, h, new WeightMatrix[] {wGate[l], wUp[l]});
                backend.swiglu(gate, up);
                backend.matmul(proj, gate, wDown[l]);
                backend.add(x, proj);
            }
            layersDone = Math.max(layersDone, end);
        }

        /**
         * Early exit: fills the K/V of layers {@code [layersDone(), end)} without running them,
         * projecting the current hidden state through each skipped layer's attention norm and
         * K/V weights, as if it were that layer's input (CALM's propagation of the exited state).
         * Later tokens then attend to an approximation of what the full model would have cached.
         * The pass is over afterwards: its residual stream went through no further layer.
         */
        public void fillSkippedKv(int end) {
            checkLayerEnd(end);
            for (int l = layersDone; l < end; l++) {
                backend.rmsNorm(h, x, attnNorm[l], config.rmsNormEps());
                writeKeysAndValues(l, false);
            }
            layersDone = Math.max(layersDone, end);
        }

        /**
         * K and V of layer {@code l} from the normed input in {@code h}, roped, into the cache; with
         * {@code andQuery}, also the layer's queries into {@code q} (unbiased, unroped), in the same
         * {@link Backend#matmuls}.
         */
        private void writeKeysAndValues(int l, boolean andQuery) {
            LlamaConfig c = config;
            if (andQuery) {
                backend.matmuls(new Tensor[] {q, k, v}, h, new WeightMatrix[] {wq[l], wk[l], wv[l]});
            } else {
                backend.matmuls(new Tensor[] {k, v}, h, new WeightMatrix[] {wk[l], wv[l]});
            }
            if (c.qkvBias()) {
                backend.addBias(k, bk[l]);
                backend.addBias(v, bv[l]);
            }
            backend.rope(k, c.kvHeads(), c.headDim(), plan.positions(), ropeInvFreq, c.ropeStyle());
            backend.writeKv(cache, l, k, v, plan.slotMapping());
        }

        private void checkLayerEnd(int end) {
            if (end < layersDone || end > config.layers()) {
                throw new IllegalArgumentException("layer " + end + " is outside [" + layersDone + ", " + config.layers() + "]");
            }
            if (end > cache.layers()) {
                throw new IllegalArgumentException("running " + end + " layers needs a KV cache of at least " + end
                        + " layers, this one has " + cache.layers());
            }
        }

        /**
         * The final norm and output head on the current hidden state, for the rows
         * {@code plan.logitsIndex()} names: logits {@code [logitsIndex.length, vocab]}.
         */
        public Tensor logits() {
            LlamaConfig c = config;
            int[] logitRows = plan.logitsIndex();
            Tensor last = backend.allocate(logitRows.length, c.dim());         // [L, dim]
            Tensor logits = backend.allocate(logitRows.length, c.vocabSize()); // [L, vocab]
            if (logitRows.length > 0) {
                backend.gatherRows(last, x, logitRows);
                backend.rmsNorm(last, last, outputNorm, c.rmsNormEps());
                backend.matmul(logits, last, output);
            }
            return logits;
        }
    }

    /** A KV cache of the first {@code layers} layers only, for a layer-skip draft. */
    public KvCache newKvCache(int numBlocks, int blockSize, int layers) {
        if (layers < 1 || layers > config.layers()) {
            throw new IllegalArgumentException("layers = " + layers + ": expected 1.." + config.layers());
        }
        return backend.allocateKvCache(layers, numBlocks, blockSize, config.kvHeads(), config.headDim());
    }

    /** Bytes of weights one decode step reads (every matrix once, the embedding row aside). */
    public long weightBytesPerToken() {
        return bytesPerToken(WeightMatrix::byteSize);
    }

    /**
     * The bytes the kernels read per decoded token: as {@link #weightBytesPerToken}, but a matrix
     * the backend re-laid ({@link RowTiledMatrix}) counts its tiles (Q8_0's f32 block scales and
     * a last partial tile's padding make them larger than the file's blocks).
     */
    public long kernelBytesPerToken() {
        return bytesPerToken(w -> w instanceof RowTiledMatrix tiled ? tiled.tiledBytes() : w.byteSize());
    }

    private long bytesPerToken(ToLongFunction<WeightMatrix> bytes) {
        long total = bytes.applyAsLong(output) + bytes.applyAsLong(outputNorm);
        for (int l = 0; l < config.layers(); l++) {
            for (WeightMatrix w : new WeightMatrix[] {attnNorm[l], wq[l], wk[l], wv[l], wo[l], ffnNorm[l], wGate[l], wUp[l], wDown[l]}) {
                total += bytes.applyAsLong(w);
            }
            if (bq[l] != null) {
                total += bytes.applyAsLong(bq[l]) + bytes.applyAsLong(bk[l]) + bytes.applyAsLong(bv[l]);
            }
        }
        return total;
    }
}
