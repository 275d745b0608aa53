package dev.lathe.tools.eval;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.LogSumExp;

import java.util.Arrays;

/**
 * Sliding-window perplexity.
 *
 * <p>Convention: the text is tokenized once, with BOS prepended when the tokenizer has one. Windows
 * of at most {@code ctx} tokens start at {@code 0, stride, 2*stride, ...}; each window is run from
 * an empty KV cache, and scores only the tokens no earlier window scored (the last
 * {@code end - previousEnd} of it; in the first window every token but the first, which has no
 * context). So every token after the first is scored exactly once, with between
 * {@code ctx - stride} and {@code ctx - 1} tokens of context (fewer at the start of the text).
 * Perplexity is {@code exp(mean negative log-likelihood)} over the scored tokens, natural log,
 * computed from f32 logits in double. {@code stride == ctx} gives disjoint windows.
 */
public final class Perplexity {
    private static final int BLOCK_SIZE = 16;
    private static final int CHUNK = 256;

    private Perplexity() {
    }

    /**
     * @param scored  tokens whose probability was scored
     * @param windows windows run
     * @param seconds wall time of the forward passes
     */
    public record Result(double perplexity, double meanNll, int scored, int windows, double seconds) {
        public double tokensPerSecond(int processed) {
            return processed / seconds;
        }
    }

    /** Perplexity of {@code model} on {@code tokens} (already tokenized, BOS included when wanted), f32 KV cache. */
    public static Result evaluate(LlamaModel model, int[] tokens, int ctx, int stride) {
        return evaluate(model, tokens, ctx, stride, KvDtype.F32);
    }

    /** {@link #evaluate(LlamaModel, int[], int, int)} with K and V stored as {@code kvDtype}. */
    public static Result evaluate(LlamaModel model, int[] tokens, int ctx, int stride, KvDtype kvDtype) {
        if (ctx < 2) {
            throw new IllegalArgumentException("--ctx must be at least 2, not " + ctx);
        }
        if (ctx > model.config().contextLength()) {
            throw new IllegalArgumentException("--ctx " + ctx + " exceeds the model's context length " + model.config().contextLength());
        }
        if (stride < 1 || stride > ctx) {
            throw new IllegalArgumentException("--stride must be between 1 and --ctx (" + ctx + "), not " + stride);
        }
        if (tokens.length < 2) {
            throw new IllegalArgumentException("the text is too short to score: " + tokens.length + " token(s)");
        }
        int vocab = model.config().vocabSize();
        int blocks = (ctx + BLOCK_SIZE - 1) / BLOCK_SIZE;
        int[] blockTable = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            blockTable[i] = i;
        }
        double nll = 0;
        int scored = 0;
        int windows = 0;
        int previousEnd = 0;
        float[] logits = new float[vocab];
        long start = System.nanoTime();
        try (KvCache cache = model.newKvCache(blocks, BLOCK_SIZE, kvDtype)) {
            for (int begin = 0; previousEnd < tokens.length; begin += stride) {
                int end = Math.min(tokens.length, begin + ctx);
                // Positions begin+firstScored .. end-1 are predicted from the logits one position earlier.
                int firstScored = Math.max(previousEnd, begin + 1) - begin;
                int[] window = Arrays.copyOfRange(tokens, begin, end);
                for (int done = 0; done < window.length; done += CHUNK) {
                    int chunkEnd = Math.min(window.length, done + CHUNK);
                    int from = Math.max(done, firstScored - 1);
                    int to = Math.min(chunkEnd, window.length - 1); // the last token predicts nothing here
                    int[] logitRows = from < to ? rangeFrom(from - done, to - done) : new int[0];
                    BatchPlan plan = plan(Arrays.copyOfRange(window, done, chunkEnd), done, blockTable, logitRows);
                    Tensor out = model.forward(plan, cache);
                    for (int i = 0; i < logitRows.length; i++) {
                        model.backend().copyRowToHost(out, i, logits);
                        int target = window[done + logitRows[i] + 1];
                        nll -= logProbability(logits, target);
                        scored++;
                    }
                }
                windows++;
                previousEnd = end;
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        double mean = nll / scored;
        return new Result(Math.exp(mean), mean, scored, windows, seconds);
    }

    private static int[] rangeFrom(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) {
            r[i] = from + i;
        }
        return r;
    }

    private static BatchPlan plan(int[] chunk, int contextLen, int[] blockTable, int[] logitRows) {
        BatchPlan base = BatchPlan.singleSequence(chunk, contextLen, blockTable, BLOCK_SIZE, false);
        return new BatchPlan(base.tokens(), base.positions(), base.seqStart(), base.contextLen(), base.blockTableStart(),
                base.blockTable(), base.slotMapping(), logitRows, base.blockSize());
    }

    /** {@code log softmax(logits)[target]}, in double. */
    static double logProbability(float[] logits, int target) {
        return logits[target] - LogSumExp.of(logits);
    }
}
