package dev.lathe.core.spec;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * Drafts with a language model run autoregressively: either a separate, smaller model sharing the
 * target's vocabulary (a quantized or pruned copy of the target qualifies), or the target itself
 * cut to its first L layers plus its final norm and output head (self-speculation, layer skip;
 * {@link LlamaModel#forward(BatchPlan, KvCache, int)}).
 *
 * <p>Each session keeps its own contiguous KV cache of the draft's layers. NOTE: for
 * self-speculation the target's cache already holds the same layers' K/V for every verified
 * token, so sharing it would save the draft's catch-up; a separate cache keeps one code path for
 * both kinds of draft and leaves the target's blocks untouched by draft positions. The catch-up
 * is cheap anyway: the accepted drafts are already in the draft's cache (it fed them while
 * drafting), so only the replacement or bonus token, and the last draft, are new.
 */
public final class ModelDrafter implements Drafter {
    /** Tokens per block of a session's own KV cache (contiguous: block i holds positions [16i, 16i + 16)). */
    private static final int BLOCK_SIZE = 16;
    /** Prompt tokens per catch-up step, as in {@code Generator.PREFILL_CHUNK}. */
    private static final int CATCH_UP_CHUNK = 256;
    /** NOTE: the draft's generator is seeded apart from the target's so that their draws are independent. */
    private static final long DRAFT_SEED_OFFSET = 0x5DEECE66DL;

    private final LlamaModel model;
    private final int layers;
    private final String description;
    private final AutoCloseable owned;

    private ModelDrafter(LlamaModel model, int layers, String description, AutoCloseable owned) {
        this.model = model;
        this.layers = layers;
        this.description = description;
        this.owned = owned;
    }

    /**
     * A separate draft model. Its vocabulary must be the target's: the same size and the same
     * piece for every id (checked here, naming the first difference), and the same BOS and EOS.
     *
     * @param name  the draft's file, for messages
     * @param owned closed with the drafter (the draft's model file), may be null
     */
    public static ModelDrafter separate(String name, LlamaModel draft, Tokenizer draftTokenizer, LlamaModel target,
                                        Tokenizer targetTokenizer, AutoCloseable owned) {
        int draftVocab = draft.config().vocabSize();
        int targetVocab = target.config().vocabSize();
        if (draftVocab != targetVocab || draftTokenizer.vocabSize() != targetTokenizer.vocabSize()) {
            throw new IllegalArgumentException("draft model " + name + ": its vocabulary has " + draftVocab
                    + " tokens but the target's has " + targetVocab + "; a draft must share the target's vocabulary");
        }
        for (int id = 0; id < targetVocab; id++) {
            String ours = draftTokenizer.piece(id);
            String theirs = targetTokenizer.piece(id);
            if (!ours.equals(theirs)) {
                throw new IllegalArgumentException("draft model " + name + ": token " + id + " is \"" + ours
                        + "\" in the draft's vocabulary but \"" + theirs + "\" in the target's; a draft must share the target's vocabulary");
            }
        }
        if (draftTokenizer.bosId() != targetTokenizer.bosId() || draftTokenizer.eosId() != targetTokenizer.eosId()) {
            throw new IllegalArgumentException("draft model " + name + ": BOS/EOS ids " + draftTokenizer.bosId() + "/"
                    + draftTokenizer.eosId() + " differ from the target's " + targetTokenizer.bosId() + "/" + targetTokenizer.eosId());
        }
        return new ModelDrafter(draft, draft.config().layers(), "draft model " + name, owned);
    }

    /** Self-speculation: the target's first {@code layers} layers (1 <= layers < the target's) and its head. */
    public static ModelDrafter selfSpeculative(LlamaModel target, int layers) {
        int total = target.config().layers();
        if (layers < 1 || layers >= total) {
            throw new IllegalArgumentException("self:" + layers + ": the draft's layer count must be in [1, " + (total - 1)
                    + "] for a model of " + total + " layers");
        }
        return new ModelDrafter(target, layers, "self(" + layers + "/" + total + " layers)", null);
    }

    @Override
    public DraftSession open(SamplingParams params, int capacity) {
        return new Session(params, Math.min(capacity, model.config().contextLength()));
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public void close() {
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing " + description + ": " + e.getMessage(), e);
            }
        }
    }

    private final class Session implements DraftSession {
        private final Sampler sampler;
        private final int capacity;
        private final int[] blockTable;
        private final KvCache cache;
        private final int[] tokens; // [capacity] what the draft has seen: tokens[0, computed) are in its cache
        private final float[] logits;
        private int computed;

        Session(SamplingParams params, int capacity) {
            int vocab = model.config().vocabSize();
            this.sampler = new Sampler(params.withSeed(params.seed() + DRAFT_SEED_OFFSET), vocab);
            this.capacity = capacity;
            this.blockTable = new int[(capacity + BLOCK_SIZE - 1) / BLOCK_SIZE];
            Arrays.setAll(blockTable, i -> i);
            this.cache = model.newKvCache(blockTable.length, BLOCK_SIZE, layers);
            this.tokens = new int[capacity];
            this.logits = new float[vocab];
        }

        @Override
        public Draft propose(int[] history, int length, int k) {
            // The last draft sits at position length + k - 1, inside the draft's context.
            int count = Math.min(k, capacity - length);
            if (count <= 0) {
                return Draft.EMPTY;
            }
            // Rollback: keep the cached prefix that still matches; rejected drafts past it are
            // overwritten before anything reads them (attention reads positions < context + new only).
            computed = Math.min(computed, length - 1); // the last token is fed (again) for its logits
            int firstDifference = Arrays.mismatch(tokens, 0, computed, history, 0, computed);
            if (firstDifference >= 0) {
                computed = firstDifference;
            }
            System.arraycopy(history, computed, tokens, computed, length - computed);
            while (computed < length) {
                int end = Math.min(length, computed + CATCH_UP_CHUNK);
                feed(computed, end);
            }
            int[] drafted = new int[count];
            float[][] distributions = new float[count][];
            for (int i = 0; i < count; i++) {
                float[] q = sampler.probabilities(logits, tokens, length + i); // consumes logits (penalties)
                int x = sampler.sampleFrom(q);
                drafted[i] = x;
                distributions[i] = q;
                tokens[length + i] = x;
                if (i + 1 < count) {
                    feed(length + i, length + i + 1);
                }
            }
            return new Draft(drafted, distributions);
        }

        /** Runs {@code tokens[from, to)} through the draft at positions {@code [from, to)}; the last one's logits into {@link #logits}. */
        private void feed(int from, int to) {
            BatchPlan plan = BatchPlan.singleSequence(Arrays.copyOfRange(tokens, from, to), from, blockTable, BLOCK_SIZE, true);
            Tensor out = model.forward(plan, cache, layers);
            model.backend().copyRowToHost(out, 0, logits);
            computed = to;
        }

        @Override
        public void close() {
            cache.close();
        }
    }
}
