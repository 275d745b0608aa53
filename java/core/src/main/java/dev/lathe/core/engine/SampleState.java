package dev.lathe.core.engine;

import dev.lathe.core.sample.Sampler;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.sample.StopStringMatcher;
import dev.lathe.core.sched.Sequence;
import dev.lathe.core.tokenizer.TokenTextDecoder;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

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

    SampleState(int index, Sequence sequence, SamplingParams params, Tokenizer tokenizer, int vocab, int[] stopTokens,
                int maxNew, int logprobs) {
        this.index = index;
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
        if (isStopToken(next)) {
            String rest = finish("stop");
            return rest.isEmpty() ? null : new TokenEvent(index, -1, rest, null);
        }
        sequence.append(next);
        TokenLogprobs lp = rawLogits == null ? null : TokenLogprobs.of(rawLogits, next, logprobs);
        if (lp != null) {
            tokenLogprobs.add(lp);
        }
        StopStringMatcher.Step step = stops.feed(decoder.next(next));
        text.append(step.text());
        String piece = step.text();
        if (step.stopped()) {
            finishReason = "stop";
        } else if (sequence.generatedCount() >= maxNew) {
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
