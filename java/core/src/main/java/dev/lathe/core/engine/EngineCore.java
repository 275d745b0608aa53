package dev.lathe.core.engine;

import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.kv.KvBlockManager;
import dev.lathe.core.kv.KvPoolSize;
import dev.lathe.core.kv.KvUsage;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sched.ScheduledStep;
import dev.lathe.core.sched.Scheduler;
import dev.lathe.core.sched.Sequence;
import dev.lathe.core.spec.Draft;
import dev.lathe.core.spec.DraftRequest;
import dev.lathe.core.spec.SpeculativeVerifier;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The batching engine's single-threaded core: requests in, one {@link #step} at a time, each step
 * one {@link LlamaModel#forward} over the ragged batch the {@link Scheduler} planned, then one
 * sample per sequence that caught up. {@link Engine} runs it on its own thread; tests drive it
 * directly to control every step.
 */
public final class EngineCore implements AutoCloseable {

    /** Receives a request's tokens as they are sampled and its output when every sample ends. */
    public interface RequestListener {
        void onToken(TokenEvent event);

        void onFinished(RequestOutput output);
    }

    /**
     * Counters since the engine started; {@code verifiedSequenceSteps} times a sequence had
     * drafts verified, {@code draftedTokens} drafts in all (after the scheduler's trimming),
     * {@code acceptedTokens} of them kept.
     */
    public record Stats(long steps, long tokensComputed, long tokensGenerated, long preemptions, long prefixHitTokens,
                        long verifiedSequenceSteps, long draftedTokens, long acceptedTokens) {
        /** Kept drafts over verified drafts; NaN when none were verified. */
        public double acceptanceRate() {
            return draftedTokens == 0 ? Double.NaN : (double) acceptedTokens / draftedTokens;
        }
    }

    private static final class RequestState {
        final Request request;
        final int[] prompt;
        final RequestListener listener;
        final int maxNew;
        final long submitted = System.nanoTime();
        final List<SampleState> samples = new ArrayList<>();
        long admitted;
        long firstToken;
        int cachedPrompt;
        boolean forked;

        RequestState(Request request, int[] prompt, RequestListener listener, int maxNew) {
            this.request = request;
            this.prompt = prompt;
            this.listener = listener;
            this.maxNew = maxNew;
        }
    }

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final EngineConfig config;
    private final KvCache cache;
    private final KvBlockManager kv;
    private final Scheduler scheduler;
    private final Map<String, RequestState> requests = new LinkedHashMap<>();
    private final Map<Long, RequestState> bySequence = new HashMap<>();
    private final float[] logits;
    private long nextSequenceId;
    private long nextArrival;
    private long steps;
    private long tokensComputed;
    private long tokensGenerated;
    private long verifiedSequenceSteps;
    private long draftedTokens;
    private long acceptedTokens;
    private final SpeculativeVerifier verifier = new SpeculativeVerifier();

    public EngineCore(LlamaModel model, Tokenizer tokenizer, EngineConfig config) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.config = config;
        LlamaConfig c = model.config();
        long perBlock = KvPoolSize.bytesPerBlock(c.layers(), config.blockSize(), c.kvHeads(), c.headDim(), config.kvDtype());
        int blocks = KvPoolSize.blocksFor(config.kvMemoryBytes(), perBlock, "KV memory");
        this.cache = model.newKvCache(blocks, config.blockSize(), config.kvDtype());
        this.kv = new KvBlockManager(blocks, config.blockSize(), config.prefixCaching());
        this.scheduler = new Scheduler(kv, config.scheduler());
        this.logits = new float[c.vocabSize()];
        if (config.speculation() != null) {
            // NOTE: a model drafter's K/V pool (outside --kv-memory) holds what the running sequences can
            // hold at most: the engine's pool, or the running cap times the context if that is less
            // (the engine's pool is often far larger, and a pool is allocated whole).
            long tokens = Math.min((long) blocks * config.blockSize(), (long) config.scheduler().maxRunning() * c.contextLength());
            config.speculation().drafter().reserve(tokens);
        }
    }

    public EngineConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public Scheduler scheduler() {
        return scheduler;
    }

    public KvUsage usage() {
        return kv.usage();
    }

    /** The KV pool as allocated, e.g. {@code KV pool: 4096 blocks of 16 tokens, f16, 512 MB (budget 512 MB)}. */
    public String describeKvPool() {
        return String.format("KV pool: %d blocks of %d tokens, %s, %d MB (budget %d MB)", cache.numBlocks(),
                cache.blockSize(), cache.dtype().label(), cache.byteSize() >> 20, config.kvMemoryBytes() >> 20);
    }

    public Stats stats() {
        return new Stats(steps, tokensComputed, tokensGenerated, scheduler.preemptions(), kv.prefixHitTokens(),
                verifiedSequenceSteps, draftedTokens, acceptedTokens);
    }

    public boolean hasWork() {
        return scheduler.hasWork();
    }

    public int activeRequests() {
        return requests.size();
    }

    /**
     * Validates and queues {@code request}. Throws {@link IllegalArgumentException} naming the
     * request and the problem: a duplicate id, an empty or too long prompt, a token id outside
     * the vocabulary, or a request that could not fit in the KV pool even alone.
     */
    public void add(Request request, RequestListener listener) {
        if (requests.containsKey(request.id())) {
            throw new IllegalArgumentException("request " + request.id() + ": a request with this id is still running");
        }
        LlamaConfig c = model.config();
        int[] prompt = request.promptTokens() != null ? request.promptTokens() : tokenizer.encode(request.promptText(), true, false);
        if (prompt.length == 0) {
            throw new IllegalArgumentException("request " + request.id() + ": the prompt is empty and the model has no BOS token to start from");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= c.vocabSize()) {
                throw new IllegalArgumentException("request " + request.id() + ": prompt token " + i + " = " + prompt[i]
                        + " is outside the vocabulary [0, " + c.vocabSize() + ")");
            }
        }
        if (prompt.length >= c.contextLength()) {
            throw new IllegalArgumentException("request " + request.id() + ": the prompt has " + prompt.length
                    + " tokens but the model's context length is " + c.contextLength());
        }
        int maxNew = Math.min(request.sampling().maxNewTokens(), c.contextLength() - prompt.length);
        int needed = kv.blocksFor(prompt.length + maxNew);
        if (needed > kv.numBlocks()) {
            throw new IllegalArgumentException("request " + request.id() + ": needs " + needed + " KV blocks (" + prompt.length
                    + " prompt + " + maxNew + " new tokens) but the pool holds " + kv.numBlocks() + "; give the engine more KV memory");
        }
        RequestState state = new RequestState(request, prompt, listener, maxNew);
        Sequence first = new Sequence(nextSequenceId++, request.priority(), nextArrival++, prompt, prompt.length + maxNew);
        state.samples.add(newSample(state, 0, first));
        requests.put(request.id(), state);
        bySequence.put(first.id(), state);
        scheduler.add(first);
    }

    private SampleState newSample(RequestState state, int index, Sequence sequence) {
        Request r = state.request;
        return new SampleState(index, sequence, r.sampling(), tokenizer, model.config().vocabSize(),
                SampleState.stopTokens(tokenizer, r.stopTokenIds(), r.ignoreEos()), state.maxNew, r.logprobs(),
                config.speculation());
    }

    /** Cancels a request: every sample ends with finish reason "abort" and frees its blocks. False for an unknown id. */
    public boolean abort(String requestId) {
        RequestState state = requests.get(requestId);
        if (state == null) {
            return false;
        }
        for (SampleState s : state.samples) {
            if (!s.finished()) {
                s.finish("abort");
                scheduler.finish(s.sequence);
            }
        }
        complete(state);
        return true;
    }

    /** Preempts every running sample of a request, as running out of blocks would (for tests and operators). */
    public void preempt(String requestId) {
        RequestState state = requests.get(requestId);
        if (state != null) {
            for (SampleState s : state.samples) {
                if (s.sequence.status() == Sequence.Status.RUNNING) {
                    scheduler.preempt(s.sequence);
                }
            }
        }
    }

    /** What one step ran: new tokens and sequences (a pure decode step has as many tokens as sequences). */
    public record StepResult(int tokens, int sequences) {
        public boolean isDecodeOnly() {
            return tokens == sequences;
        }
    }

    /** Runs one step; an empty result (0 tokens) when there was nothing to run. */
    public StepResult step() {
        proposeDrafts();
        ScheduledStep step = scheduler.schedule();
        for (var copy : step.copies()) {
            cache.copyBlock(copy.from(), copy.to());
        }
        if (step.isEmpty()) {
            return new StepResult(0, 0);
        }
        long now = System.nanoTime();
        for (Sequence s : step.sequences()) {
            RequestState state = bySequence.get(s.id());
            if (state.admitted == 0) {
                state.admitted = now;
                state.cachedPrompt = s.computed(); // before the step completes: what the prefix cache supplied
            }
        }
        Tensor out = model.forward(step.plan(), cache);
        scheduler.complete(step);
        steps++;
        tokensComputed += step.plan().tokenCount();
        for (int i = 0; i < step.sequences().size(); i++) {
            int row = step.logitsRow()[i];
            if (row < 0) {
                continue;
            }
            Sequence s = step.sequences().get(i);
            RequestState state = bySequence.get(s.id());
            int drafts = step.logitsCount()[i] - 1;
            if (drafts > 0) {
                verify(state, sampleOf(state, s), out, row, drafts);
            } else {
                model.backend().copyRowToHost(out, row, logits);
                if (!state.forked) {
                    fork(state);
                    for (SampleState sample : state.samples) {
                        sample(state, sample, logits.clone());
                    }
                } else {
                    sample(state, sampleOf(state, s), logits);
                }
            }
            if (allFinished(state)) {
                complete(state);
            }
        }
        return new StepResult(step.plan().tokenCount(), step.sequences().size());
    }

    /**
     * On the first logits of a request: its other n - 1 samples start as forks sharing the prompt's blocks.
     * NOTE: forks join the running set at once, even past the running cap: they hold no block of their
     * own yet, and preemption takes them back out if the pool runs short.
     */
    private void fork(RequestState state) {
        state.forked = true;
        Sequence parent = state.samples.getFirst().sequence;
        for (int i = 1; i < state.request.n(); i++) {
            Sequence child = scheduler.fork(parent, nextSequenceId++, parent.arrival());
            state.samples.add(newSample(state, i, child));
            bySequence.put(child.id(), state);
        }
    }

    private static SampleState sampleOf(RequestState state, Sequence s) {
        for (SampleState sample : state.samples) {
            if (sample.sequence == s) {
                return sample;
            }
        }
        throw new IllegalStateException(s + " belongs to no sample of request " + state.request.id());
    }

    private void sample(RequestState state, SampleState sample, float[] rowLogits) {
        TokenEvent event = sample.accept(rowLogits);
        if (state.firstToken == 0) {
            state.firstToken = System.nanoTime();
        }
        publish(state, event);
        if (sample.finished()) {
            scheduler.finish(sample.sequence);
        }
    }

    private void publish(RequestState state, TokenEvent event) {
        if (event != null && event.token() >= 0) {
            tokensGenerated++;
        }
        if (event != null && state.listener != null) {
            state.listener.onToken(event);
        }
    }

    /**
     * Speculative decoding, before scheduling: every running sample whose sequence has caught up
     * (only its last token is not in the cache) and carries no drafts yet appends up to its draft
     * length of drafts. The scheduler then feeds them with the last token, within the token budget.
     */
    private void proposeDrafts() {
        if (config.speculation() == null) {
            return;
        }
        List<SampleState> drafting = new ArrayList<>();
        List<DraftRequest> asks = new ArrayList<>();
        for (RequestState state : requests.values()) {
            if (!state.forked) {
                continue; // the prompt's logits have not come yet
            }
            for (SampleState sample : state.samples) {
                Sequence s = sample.sequence;
                if (s.status() != Sequence.Status.RUNNING || s.draftCount() > 0 || s.computed() != s.length() - 1) {
                    continue;
                }
                int k = sample.draftLimit();
                if (k > 0) {
                    drafting.add(sample);
                    asks.add(sample.draftRequest(k));
                }
            }
        }
        if (asks.isEmpty()) {
            return;
        }
        // One call for every sequence: a model drafter runs each draft round as one batched pass.
        List<Draft> drafts = config.speculation().drafter().proposeAll(asks);
        for (int i = 0; i < drafting.size(); i++) {
            SampleState sample = drafting.get(i);
            sample.setPendingDraft(drafts.get(i));
            sample.sequence.appendDrafts(drafts.get(i).tokens());
        }
    }

    /**
     * A verify step's outcome for one sample: rows {@code [row, row + drafts]} of {@code out} hold
     * the target's logits after the token before the drafts and after each draft.
     */
    private void verify(RequestState state, SampleState sample, Tensor out, int row, int drafts) {
        SpeculativeVerifier.Verdict verdict = sample.verify(verifier, r -> {
            model.backend().copyRowToHost(out, row + r, logits);
            return logits;
        }, drafts);
        verifiedSequenceSteps++;
        draftedTokens += drafts;
        acceptedTokens += verdict.accepted();
        scheduler.resolveDrafts(sample.sequence, verdict.accepted());
        for (TokenEvent event : sample.acceptVerified(verdict)) {
            publish(state, event);
        }
        if (sample.finished()) {
            scheduler.finish(sample.sequence);
        }
    }

    private static boolean allFinished(RequestState state) {
        if (!state.forked) {
            return false;
        }
        for (SampleState s : state.samples) {
            if (!s.finished()) {
                return false;
            }
        }
        return true;
    }

    private void complete(RequestState state) {
        requests.remove(state.request.id());
        List<Completion> completions = new ArrayList<>();
        long computed = 0;
        for (SampleState s : state.samples) {
            bySequence.remove(s.sequence.id());
            completions.add(s.completion());
            computed += s.sequence.tokensComputed();
        }
        for (int i = completions.size(); i < state.request.n(); i++) { // aborted before the samples forked
            completions.add(new Completion(i, "", new int[0], "abort", List.of()));
        }
        long end = System.nanoTime();
        RequestOutput output = new RequestOutput(state.request.id(), state.prompt.clone(), List.copyOf(completions),
                state.cachedPrompt, computed,
                state.admitted == 0 ? end - state.submitted : state.admitted - state.submitted,
                state.firstToken == 0 ? 0 : state.firstToken - state.submitted, end - state.submitted);
        if (state.listener != null) {
            state.listener.onFinished(output);
        }
    }

    /** Checks the KV invariant (every block free, cached, or owned with the right count); null when it holds. */
    public String checkKvInvariant() {
        return kv.checkInvariant();
    }

    @Override
    public void close() {
        cache.close();
    }
}
