package dev.lathe.core.generate;

import dev.lathe.core.backend.BatchPlan;
import dev.lathe.core.backend.KvCache;
import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.Tensor;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sample.StopStringMatcher;
import dev.lathe.core.spec.Draft;
import dev.lathe.core.spec.DraftLength;
import dev.lathe.core.spec.DraftSession;
import dev.lathe.core.spec.Speculation;
import dev.lathe.core.spec.SpeculativeVerifier;
import dev.lathe.core.tokenizer.TokenTextDecoder;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * Generates text for one sequence at a time: chunked prefill of the prompt, then one decode step
 * per token, with a KV cache sized to the request. (Serving many sequences at once is the
 * batching engine's job; this is the plain loop it is checked against.)
 *
 * <p>With {@link #withSpeculation} a decode step feeds the last token and up to K draft tokens
 * together, and {@link SpeculativeVerifier} keeps a prefix of the drafts plus one token of the
 * target's: plain decoding is the same step with no drafts. With {@link #withEarlyExit} a decode
 * step may stop after some layers ({@link EarlyExit}).
 */
public final class Generator {
    /** Tokens per KV block. */
    public static final int BLOCK_SIZE = 16;
    /** Prompt tokens per prefill step: bounds the activations' memory for long prompts. */
    public static final int PREFILL_CHUNK = 256;

    /** Receives each piece of text as soon as it is complete (whole UTF-8 characters, stop strings held back). */
    @FunctionalInterface
    public interface TextListener {
        void onText(String piece);
    }

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final Speculation speculation; // null: no drafts
    private final EarlyExit earlyExit;     // null: every layer, every step
    private final KvDtype kvDtype;
    private final SpeculativeVerifier verifier = new SpeculativeVerifier();

    public Generator(LlamaModel model, Tokenizer tokenizer) {
        this(model, tokenizer, null, null, KvDtype.F32);
    }

    private Generator(LlamaModel model, Tokenizer tokenizer, Speculation speculation, EarlyExit earlyExit,
                      KvDtype kvDtype) {
        if (speculation != null && earlyExit != null) {
            // NOTE: a verify step scores k + 1 tokens at once, and exiting is decided per token.
            throw new IllegalArgumentException("--speculate and --early-exit cannot be combined");
        }
        if (earlyExit != null) {
            earlyExit.requireFits(model.config().layers());
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.speculation = speculation;
        this.earlyExit = earlyExit;
        this.kvDtype = kvDtype;
    }

    /** This generator with speculative decoding (null: without). */
    public Generator withSpeculation(Speculation value) {
        return new Generator(model, tokenizer, value, earlyExit, kvDtype);
    }

    /** This generator with early exit (null: without). */
    public Generator withEarlyExit(EarlyExit value) {
        return new Generator(model, tokenizer, speculation, value, kvDtype);
    }

    /** This generator with K and V stored as {@code value} (default f32). */
    public Generator withKvDtype(KvDtype value) {
        return new Generator(model, tokenizer, speculation, earlyExit, java.util.Objects.requireNonNull(value, "kvDtype"));
    }

    public LlamaModel model() {
        return model;
    }

    /** The prompt's tokens, with BOS first when the model uses one; an empty prompt is BOS alone. */
    public int[] encodePrompt(String prompt) {
        int[] ids = tokenizer.encode(prompt, true, false);
        if (ids.length == 0) {
            throw new IllegalArgumentException("the prompt is empty and the model has no BOS token to start from");
        }
        return ids;
    }

    public GenerationResult generate(String prompt, SamplingParams params, TextListener listener) {
        return generate(encodePrompt(prompt), params, listener);
    }

    /**
     * Generates up to {@code params.maxNewTokens()} tokens after {@code promptTokens}. Stops at a
     * stop token (EOS, end of turn), a stop string, or the model's context length.
     */
    public GenerationResult generate(int[] promptTokens, SamplingParams params, TextListener listener) {
        int contextLength = model.config().contextLength();
        int vocab = model.config().vocabSize();
        if (promptTokens.length == 0) {
            throw new IllegalArgumentException("no prompt tokens");
        }
        if (promptTokens.length >= contextLength) {
            throw new IllegalArgumentException("the prompt has " + promptTokens.length
                    + " tokens but the model's context length is " + contextLength
                    + "; shorten it to leave room for at least one new token");
        }
        for (int id : promptTokens) {
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("prompt token id " + id + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        int maxNew = Math.min(params.maxNewTokens(), contextLength - promptTokens.length);
        int capacity = promptTokens.length + maxNew;
        int blocks = (capacity + BLOCK_SIZE - 1) / BLOCK_SIZE;
        int[] blockTable = new int[blocks];
        Arrays.setAll(blockTable, i -> i);

        Sampler sampler = new Sampler(params, vocab);
        // After a bare BOS the text starts here, so SentencePiece's space prefix is dropped (as llama2.c and llama.cpp do).
        boolean textStart = promptTokens[promptTokens.length - 1] == tokenizer.bosId();
        TokenTextDecoder decoder = new TokenTextDecoder(tokenizer, textStart);
        StopStringMatcher stops = new StopStringMatcher(params.stopStrings());
        int[] history = Arrays.copyOf(promptTokens, capacity);
        int historyLength = promptTokens.length;
        float[] logits = new float[vocab];
        StringBuilder text = new StringBuilder();
        String finishReason = "length";

        DraftLength draftLength = speculation == null ? null : new DraftLength(speculation.maxDraftTokens());
        // A backend that verifies where the logits are (CUDA: lathe_spec_verify) takes the steps
        // with drafts when the sampling chain is the one its kernel applies. Its draws come from
        // its own generator, so at temperature > 0 the tokens differ from the host's for the same
        // seed while following the same distribution; at temperature 0 both are greedy.
        boolean deviceVerifiable = params.repetitionPenalty() == 1f && params.presencePenalty() == 0f
                && params.frequencyPenalty() == 0f && params.minP() <= 0f;
        int layers = model.config().layers();
        long steps = 0;
        long drafted = 0;
        long accepted = 0;
        long layersRun = 0;

        try (KvCache cache = model.newKvCache(blocks, BLOCK_SIZE, kvDtype);
             DraftSession drafts = speculation == null ? null : speculation.drafter().open(params, capacity)) {
            long start = System.nanoTime();
            prefill(model, promptTokens, blockTable, cache, logits);
            long prefillNanos = System.nanoTime() - start;
            int generated = 0;
            int[] emitted = {sampler.sample(logits, history, historyLength)};
            long decodeStart = System.nanoTime();
            int emittedCount = 1;
            decode:
            while (true) {
                for (int e = 0; e < emittedCount; e++) {
                    int next = emitted[e];
                    if (isStopToken(next)) {
                        finishReason = "stop";
                        break decode;
                    }
                    history[historyLength++] = next;
                    generated++;
                    StopStringMatcher.Step step = stops.feed(decoder.next(next));
                    emit(step.text(), text, listener);
                    if (step.stopped()) {
                        finishReason = "stop";
                        break decode;
                    }
                    if (generated == maxNew) {
                        break decode;
                    }
                }
                // One step: the last token (its K/V not yet cached) and k drafts after it, at
                // positions [historyLength - 1, historyLength + k). At most maxNew - generated
                // tokens may still come out of it: k drafts + 1.
                int k = drafts == null ? 0 : Math.min(draftLength.next(), maxNew - generated - 1);
                Draft draft = k > 0 ? drafts.propose(history, historyLength, k) : Draft.EMPTY;
                k = draft.size();
                int[] stepTokens = new int[k + 1];
                stepTokens[0] = history[historyLength - 1];
                System.arraycopy(draft.tokens(), 0, stepTokens, 1, k);
                System.arraycopy(draft.tokens(), 0, history, historyLength, k);
                BatchPlan plan = BatchPlan.singleSequence(stepTokens, historyLength - 1, blockTable, BLOCK_SIZE, k + 1);
                Tensor out;
                if (earlyExit != null) {
                    EarlyExit.Step exited = earlyExit.forward(model, plan, cache);
                    out = exited.logits();
                    layersRun += exited.layersRun();
                } else {
                    out = model.forward(plan, cache);
                    layersRun += layers;
                }
                int[] onDevice = k > 0 && deviceVerifiable
                        ? model.backend().verifyDraft(out, draft.tokens(), draft.probabilities(), params.seed(), steps,
                                params.temperature(), params.topK(), params.topP())
                        : null;
                SpeculativeVerifier.Verdict verdict = onDevice != null
                        ? new SpeculativeVerifier.Verdict(onDevice[0], onDevice[1])
                        : verifier.verify(sampler, row -> {
                            model.backend().copyRowToHost(out, row, logits);
                            return logits;
                        }, history, historyLength, draft);
                // Rollback: K/V written at the rejected drafts' positions stay in the cache past the
                // sequence's end, where nothing reads them; the next step overwrites them first.
                steps++;
                drafted += k;
                accepted += verdict.accepted();
                if (draftLength != null) {
                    draftLength.observe(k, verdict.accepted());
                }
                emitted = Arrays.copyOf(draft.tokens(), verdict.accepted() + 1);
                emitted[verdict.accepted()] = verdict.nextToken();
                emittedCount = emitted.length;
            }
            if (!stops.isStopped()) {
                emit(stops.feed(decoder.flush()).text(), text, listener);
                emit(stops.flush(), text, listener);
            }
            long decodeNanos = generated == 0 ? 0 : System.nanoTime() - decodeStart;
            return new GenerationResult(promptTokens, Arrays.copyOfRange(history, promptTokens.length, historyLength),
                    text.toString(), finishReason, prefillNanos, decodeNanos,
                    new DecodeStats(steps, drafted, accepted, layersRun));
        }
    }

    /**
     * Runs {@code prompt} through {@code model} into {@code cache} (slots from {@code blockTable},
     * positions from 0) in chunks of {@link #PREFILL_CHUNK}, and writes the last token's logits
     * to {@code logits}.
     */
    public static void prefill(LlamaModel model, int[] prompt, int[] blockTable, KvCache cache, float[] logits) {
        for (int done = 0; done < prompt.length; done += PREFILL_CHUNK) {
            int end = Math.min(prompt.length, done + PREFILL_CHUNK);
            BatchPlan plan = BatchPlan.singleSequence(Arrays.copyOfRange(prompt, done, end), done, blockTable,
                    BLOCK_SIZE, end == prompt.length);
            Tensor out = model.forward(plan, cache);
            if (end == prompt.length) {
                model.backend().copyRowToHost(out, 0, logits);
            }
        }
    }

    private boolean isStopToken(int id) {
        for (int stop : tokenizer.stopIds()) {
            if (stop == id) {
                return true;
            }
        }
        return false;
    }

    private static void emit(String piece, StringBuilder text, TextListener listener) {
        if (!piece.isEmpty()) {
            text.append(piece);
            if (listener != null) {
                listener.onText(piece);
            }
        }
    }
}
