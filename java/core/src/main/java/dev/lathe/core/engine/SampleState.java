package dev.lathe.core.engine;

import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sample.StopStringMatcher;
import dev.lathe.core.sched.Sequence;
import dev.lathe.core.spec.Draft;
import dev.lathe.core.spec.DraftLength;
import dev.lathe.core.spec.DraftRequest;
import dev.lathe.core.spec.DraftSession;
import dev.lathe.core.spec.Speculation;
import dev.lathe.core.spec.SpeculativeVerifier;
import dev.lathe.core.tokenizer.TokenTextDecoder;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;

/**
 * One sample of a request while it generates: its sequence, its own sampler, text decoder and
 * stop-string matcher, and the text so far. The per-token rules are {@code Generator}'s, so a
 * greedy sample here gives the same tokens and text as the single-sequence loop.
 */
final class SampleState {
    final int index;
    final Sequence sequence;
    private final Sampler sampler;
    private final TokenTextDecoder decoder;
    private final StopStringMatcher stops;
    private final int[] stopTokens;
    private final int maxNew;
    private final int logprobs;
    private final float[] rawLogits; // [vocab] kept for log-probabilities when asked for
    private final StringBuilder text = new StringBuilder();
    private final List<TokenLogprobs> tokenLogprobs = new ArrayList<>();
    private String finishReason;
    private final SamplingParams params;
    private final Speculation speculation;  // null: plain decoding
    private final DraftLength draftLength;  // null: plain decoding
    private DraftSession draftSession;      // opened at the first draft, closed when the sample ends
    private Draft pendingDraft;             // proposed, appended to the sequence, not yet verified
    private Draft verifiedDraft;            // the part of the pending draft the last verify step scored

    SampleState(int index, Sequence sequence, SamplingParams params, Tokenizer tokenizer, int vocab, int[] stopTokens,
                int maxNew, int logprobs, Speculation speculation) {
        this.index = index;
        this.params = params.withSeed(params.seed() + index);
        this.speculation = speculation;
        this.draftLength = speculation == null ? null : new DraftLength(speculation.maxDraftTokens());
        this.sequence = sequence;
        // NOTE: sample i draws from its own generator seeded seed + i, so n samples differ yet each is reproducible.
        this.sampler = new Sampler(params.withSeed(params.seed() + index), vocab);
        int[] prompt = sequence.tokenBuffer();
        boolean textStart = prompt[sequence.promptLength() - 1] == tokenizer.bosId();
        this.decoder = new TokenTextDecoder(tokenizer, textStart);
        this.stops = new StopStringMatcher(params.stopStrings());
        this.stopTokens = stopTokens;
        this.maxNew = maxNew;
        this.logprobs = logprobs;
        this.rawLogits = logprobs > 0 ? new float[vocab] : null;
    }

    boolean finished() {
        return finishReason != null;
    }

    /**
     * Samples the next token from {@code logits} (penalties are applied in place), appends it to
     * the sequence unless it ends generation, and returns the event to stream: a token, or, when a
     * stop token ended the sample, token -1 with the text still held back (null when none). Check
     * {@link #finished()} afterwards.
     */
    TokenEvent accept(float[] logits) {
        if (rawLogits != null) {
            System.arraycopy(logits, 0, rawLogits, 0, logits.length);
        }
        int next = sampler.sample(logits, sequence.tokenBuffer(), sequence.length());
        return deliver(next, sequence.length());
    }

    /**
     * Up to how many tokens to draft for the next step: 0 without speculation, for a request that
     * wants log-probabilities (they come from one row of logits per token, which a verify step
     * does not keep), or when only one more token may come.
     */
    int draftLimit() {
        if (draftLength == null || logprobs > 0 || finished()) {
            return 0;
        }
        return Math.min(draftLength.next(), maxNew - sequence.generatedCount() - 1);
    }

    /** What to ask the drafter for: up to {@code k} drafts to follow the sequence (the session opens on first use). */
    DraftRequest draftRequest(int k) {
        if (draftSession == null) {
            draftSession = speculation.drafter().open(params, sequence.promptLength() + maxNew);
        }
        return new DraftRequest(draftSession, sequence.tokenBuffer(), sequence.length(), k);
    }

    /** The drafter's answer, appended to the sequence by the engine, to be verified next step. */
    void setPendingDraft(Draft draft) {
        pendingDraft = draft;
    }

    /**
     * Verifies the first {@code drafts} tokens of the pending draft (the scheduler may have
     * dropped the rest), which sit at the end of the sequence, against the target's logits rows.
     */
    SpeculativeVerifier.Verdict verify(SpeculativeVerifier verifier, IntFunction<float[]> rows, int drafts) {
        Draft draft = pendingDraft;
        verifiedDraft = new Draft(Arrays.copyOf(draft.tokens(), drafts),
                draft.probabilities() == null ? null : Arrays.copyOf(draft.probabilities(), drafts));
        pendingDraft = null;
        SpeculativeVerifier.Verdict verdict = verifier.verify(sampler, rows, sequence.tokenBuffer(),
                sequence.length() - drafts, verifiedDraft);
        draftLength.observe(drafts, verdict.accepted());
        return verdict;
    }

    /**
     * After {@link #verify} and the scheduler's rollback (the sequence now ends with the accepted
     * drafts): streams the accepted drafts and the verdict's token, as {@link #accept} would one by
     * one, stopping where a stop token, stop string or the length limit ends the sample.
     */
    List<TokenEvent> acceptVerified(SpeculativeVerifier.Verdict verdict) {
        int first = sequence.length() - verdict.accepted();
        List<TokenEvent> events = new ArrayList<>();
        for (int j = 0; j <= verdict.accepted() && !finished(); j++) {
            int token = j < verdict.accepted() ? verifiedDraft.tokens()[j] : verdict.nextToken();
            TokenEvent event = deliver(token, first + j);
            if (event != null) {
                events.add(event);
            }
        }
        return events;
    }

    /**
     * Emits {@code next} as the token at {@code position}: appended when the sequence ends there,
     * else already in it (an accepted draft). A sample that ends here is cut back to end here.
     */
    private TokenEvent deliver(int next, int position) {
        if (isStopToken(next)) {
            sequence.truncate(position);
            String rest = finish("stop");
            return rest.isEmpty() ? null : new TokenEvent(index, -1, rest, null);
        }
        if (sequence.length() == position) {
            sequence.append(next);
        }
        TokenLogprobs lp = rawLogits == null ? null : TokenLogprobs.of(rawLogits, next, logprobs);
        if (lp != null) {
            tokenLogprobs.add(lp);
        }
        StopStringMatcher.Step step = stops.feed(decoder.next(next));
        text.append(step.text());
        String piece = step.text();
        int generated = position + 1 - sequence.promptLength();
        if (step.stopped()) {
            sequence.truncate(position + 1);
            finishReason = "stop";
            closeDraftSession();
        } else if (generated >= maxNew) {
            sequence.truncate(position + 1);
            piece += finish("length");
        }
        return new TokenEvent(index, next, piece, lp);
    }

    /** Ends the sample for {@code reason}; returns the text released by flushing (already added to the text). */
    String finish(String reason) {
        if (finishReason != null) {
            return "";
        }
        finishReason = reason;
        closeDraftSession();
        String rest = "";
        if (!stops.isStopped()) {
            rest = stops.feed(decoder.flush()).text();
            if (!stops.isStopped()) {
                rest += stops.flush();
            }
        }
        text.append(rest);
        return rest;
    }

    private void closeDraftSession() {
        if (draftSession != null) {
            draftSession.close();
            draftSession = null;
        }
    }

    private boolean isStopToken(int id) {
        for (int stop : stopTokens) {
            if (stop == id) {
                return true;
            }
        }
        return false;
    }

    Completion completion() {
        return new Completion(index, text.toString(), sequence.generated(), finishReason == null ? "abort" : finishReason,
                List.copyOf(tokenLogprobs));
    }

    static int[] stopTokens(Tokenizer tokenizer, int[] extra, boolean ignoreEos) {
        int[] model = ignoreEos ? new int[0] : tokenizer.stopIds();
        int[] all = Arrays.copyOf(model, model.length + extra.length);
        System.arraycopy(extra, 0, all, model.length, extra.length);
        return all;
    }
}
