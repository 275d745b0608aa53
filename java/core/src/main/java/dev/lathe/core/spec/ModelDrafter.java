package dev.lathe.core.spec;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.kv.BlockAllocator;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Drafts with a language model run autoregressively: either a separate, smaller model sharing the
 * target's vocabulary (a quantized or pruned copy of the target qualifies), or the target itself
 * cut to its first L layers plus its final norm and output head (self-speculation, layer skip;
 * {@link LlamaModel#forward(BatchPlan, KvCache, int)}).
 *
 * <p>The draft's K/V live in one paged pool of the draft's layers shared by all sessions; each
 * session holds the blocks its positions need, taken as it grows and given back when it closes.
 * {@link #proposeAll} runs every draft round of every session as one forward pass over the pool
 * (the batching engine drafts for all its sequences at once). A session that finds the pool full
 * drafts nothing that step: drafting is an optimization, never needed for a correct output.
 *
 * <p>NOTE: for self-speculation the target's cache already holds the same layers' K/V for every
 * verified token, so sharing it would save the draft's catch-up and memory; a pool of its own keeps
 * one code path for both kinds of draft and leaves the target's blocks untouched by draft
 * positions. The catch-up is cheap anyway: the accepted drafts are already in the draft's cache
 * (it fed them while drafting), so only the replacement or bonus token, and the last draft, are new.
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
    private KvCache pool;            // [numBlocks, BLOCK_SIZE, kvHeads, headDim] for each of the draft's layers
    private BlockAllocator blocks;   // the pool's free blocks
    private int reservedBlocks;      // from reserve(); 0: sized for the sessions as they open
    private int openSessions;

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
    public void reserve(long tokens) {
        reservedBlocks = (int) Math.min(Integer.MAX_VALUE / 2, (tokens + BLOCK_SIZE - 1) / BLOCK_SIZE);
    }

    @Override
    public DraftSession open(SamplingParams params, int capacity) {
        int draftCapacity = Math.min(capacity, model.config().contextLength());
        int needed = Math.max(reservedBlocks, blocksFor(draftCapacity));
        // NOTE: the pool is made (or, with no session open, remade larger) on demand, so a
        // Generator that runs one sequence at a time needs no reserve() call; without one, the
        // pool fits one session, and sessions open beside it draft only while blocks remain.
        if (pool == null || (openSessions == 0 && pool.numBlocks() < needed)) {
            if (pool != null) {
                pool.close();
            }
            pool = model.newKvCache(needed, BLOCK_SIZE, layers);
            blocks = new BlockAllocator(needed);
        }
        openSessions++;
        return new Session(params, draftCapacity);
    }

    private static int blocksFor(int tokens) {
        return (tokens + BLOCK_SIZE - 1) / BLOCK_SIZE;
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.close();
            pool = null;
        }
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing " + description + ": " + e.getMessage(), e);
            }
        }
    }

    /**
     * Drafts for every request in rounds: first each session catches up with its history (the
     * tokens its cache lacks, usually the last draft and the target's replacement or bonus token),
     * then round i samples draft i of every session that wants more than i and feeds them all
     * together for the next round's logits.
     */
    @Override
    public List<Draft> proposeAll(List<DraftRequest> requests) {
        int n = requests.size();
        Session[] sessions = new Session[n];
        int[] counts = new int[n];
        int[] lengths = new int[n];
        int rounds = 0;
        List<Session> catchUp = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            DraftRequest request = requests.get(r);
            if (!(request.session() instanceof Session s) || s.drafter() != this) {
                throw new IllegalArgumentException("draft session " + request.session() + " was not opened by " + description);
            }
            sessions[r] = s;
            lengths[r] = request.length();
            counts[r] = s.prepare(request.history(), request.length(), request.k());
            rounds = Math.max(rounds, counts[r]);
            if (counts[r] > 0) {
                catchUp.add(s);
            }
        }
        feed(catchUp);
        int[][] drafted = new int[n][];
        float[][][] distributions = new float[n][][];
        for (int r = 0; r < n; r++) {
            drafted[r] = new int[counts[r]];
            distributions[r] = new float[counts[r]][];
        }
        for (int i = 0; i < rounds; i++) {
            List<Session> next = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                if (i >= counts[r]) {
                    continue;
                }
                Session s = sessions[r];
                int position = lengths[r] + i;
                float[] q = s.sampler.probabilities(s.logits, s.tokens, position); // consumes the logits (penalties)
                int x = s.sampler.sampleFrom(q);
                drafted[r][i] = x;
                distributions[r][i] = q;
                s.tokens[position] = x;
                if (i + 1 < counts[r]) {
                    s.feedTo = position + 1;
                    next.add(s);
                }
            }
            feed(next);
        }
        List<Draft> drafts = new ArrayList<>(n);
        for (int r = 0; r < n; r++) {
            drafts.add(counts[r] == 0 ? Draft.EMPTY : new Draft(drafted[r], distributions[r]));
        }
        return drafts;
    }

    /**
     * One draft forward pass over {@code sessions}: each feeds {@code tokens[computed, feedTo)}
     * and gets the last one's logits. A catch-up longer than {@link #CATCH_UP_CHUNK} (a prompt, on
     * a session's first draft) is fed alone in chunks first, bounding the pass's activations.
     */
    private void feed(List<Session> sessions) {
        if (sessions.isEmpty()) {
            return;
        }
        for (Session s : sessions) {
            while (s.feedTo - s.computed > CATCH_UP_CHUNK) {
                int target = s.feedTo;
                s.feedTo = s.computed + CATCH_UP_CHUNK;
                run(List.of(s), false);
                s.feedTo = target;
            }
        }
        run(sessions, true);
    }

    private void run(List<Session> sessions, boolean wantLogits) {
        int b = sessions.size();
        int[] seqStart = new int[b + 1];
        int[] tableStart = new int[b + 1];
        for (int i = 0; i < b; i++) {
            Session s = sessions.get(i);
            seqStart[i + 1] = seqStart[i] + (s.feedTo - s.computed);
            tableStart[i + 1] = tableStart[i] + blocksFor(s.feedTo);
        }
        int t = seqStart[b];
        int[] tokens = new int[t];
        int[] positions = new int[t];
        int[] slots = new int[t];
        int[] contextLen = new int[b];
        int[] table = new int[tableStart[b]];
        int[] logitsIndex = new int[wantLogits ? b : 0];
        for (int i = 0; i < b; i++) {
            Session s = sessions.get(i);
            System.arraycopy(s.table, 0, table, tableStart[i], tableStart[i + 1] - tableStart[i]);
            contextLen[i] = s.computed;
            for (int row = seqStart[i], pos = s.computed; pos < s.feedTo; row++, pos++) {
                tokens[row] = s.tokens[pos];
                positions[row] = pos;
                slots[row] = s.table[pos / BLOCK_SIZE] * BLOCK_SIZE + pos % BLOCK_SIZE;
            }
            if (wantLogits) {
                logitsIndex[i] = seqStart[i + 1] - 1;
            }
        }
        BatchPlan plan = new BatchPlan(tokens, positions, seqStart, contextLen, tableStart, table, slots, logitsIndex, BLOCK_SIZE);
        Tensor out = model.forward(plan, pool, layers);
        for (int i = 0; i < b; i++) {
            Session s = sessions.get(i);
            if (wantLogits) {
                model.backend().copyRowToHost(out, i, s.logits);
            }
            s.computed = s.feedTo;
        }
    }

    private final class Session implements DraftSession {
        private final Sampler sampler;
        private final int capacity;
        private final int[] tokens; // [capacity] what the draft has seen: tokens[0, computed) are in its cache
        private final float[] logits;
        private int[] table = new int[4]; // pool blocks, in position order
        private int tableSize;
        private int computed;
        private int feedTo;       // the next pass feeds tokens[computed, feedTo)
        private boolean closed;

        Session(SamplingParams params, int capacity) {
            int vocab = model.config().vocabSize();
            this.sampler = new Sampler(params.withSeed(params.seed() + DRAFT_SEED_OFFSET), vocab);
            this.capacity = capacity;
            this.tokens = new int[capacity];
            this.logits = new float[vocab];
        }

        ModelDrafter drafter() {
            return ModelDrafter.this;
        }

        @Override
        public Draft propose(int[] history, int length, int k) {
            return proposeAll(List.of(new DraftRequest(this, history, length, k))).getFirst();
        }

        /**
         * Rolls back to what still matches {@code history}, takes the blocks the drafts need and
         * returns how many tokens to draft (0: none, the pool or the context is full).
         */
        int prepare(int[] history, int length, int k) {
            // The last draft sits at position length + count - 1, inside the draft's context; the
            // positions fed reach length + count - 2.
            int count = Math.min(k, capacity - length);
            if (closed || count <= 0 || !ensureBlocks(length + count - 1)) {
                return 0;
            }
            // Rollback: keep the cached prefix that still matches; rejected drafts past it are
            // overwritten before anything reads them (attention reads positions < context + new only).
            computed = Math.min(computed, length - 1); // the last token is fed (again) for its logits
            int firstDifference = Arrays.mismatch(tokens, 0, computed, history, 0, computed);
            if (firstDifference >= 0) {
                computed = firstDifference;
            }
            System.arraycopy(history, computed, tokens, computed, length - computed);
            feedTo = length;
            return count;
        }

        /** Pool blocks for positions [0, positions); all or nothing. */
        private boolean ensureBlocks(int positions) {
            int needed = blocksFor(positions) - tableSize;
            if (needed <= 0) {
                return true;
            }
            if (needed > blocks.available()) {
                return false;
            }
            if (tableSize + needed > table.length) {
                table = Arrays.copyOf(table, Math.max(tableSize + needed, 2 * table.length));
            }
            for (int i = 0; i < needed; i++) {
                table[tableSize++] = blocks.allocate();
            }
            return true;
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            for (int i = tableSize - 1; i >= 0; i--) {
                blocks.release(table[i]);
            }
            tableSize = 0;
            openSessions--;
        }
    }
}
