package dev.lathe.core.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds control, unknown and user-defined tokens written out in text ({@code <|eot_id|>}, {@code <s>}),
 * so they become their ids instead of being tokenized as characters. Scanning left to right, at
 * each position the longest matching token wins.
 *
 * <p>NOTE: user-defined tokens are always matched, control and unknown tokens only when the
 * caller asks to parse special tokens, as HF tokenizers and llama.cpp do (a user-defined token is part of
 * the ordinary vocabulary, a control token in user text could be a prompt injection).
 */
final class SpecialTokenMatcher {

    /** A piece of the input: plain text to tokenize ({@code tokenId < 0}) or one special token. */
    record Fragment(String text, int tokenId) {
        boolean isToken() {
            return tokenId >= 0;
        }
    }

    private record Candidate(String text, int id, boolean control) {
    }

    /** Candidates by their first char, longest first. */
    private final Map<Character, List<Candidate>> byFirstChar = new HashMap<>();

    SpecialTokenMatcher(Vocabulary vocabulary) {
        for (int id = 0; id < vocabulary.size(); id++) {
            int type = vocabulary.tokenType(id);
            String text = vocabulary.tokens().get(id);
            boolean special = type == Vocabulary.TYPE_CONTROL || type == Vocabulary.TYPE_UNKNOWN;
            if ((special || type == Vocabulary.TYPE_USER_DEFINED) && !text.isEmpty()) {
                byFirstChar.computeIfAbsent(text.charAt(0), c -> new ArrayList<>()).add(new Candidate(text, id, special));
            }
        }
        for (List<Candidate> list : byFirstChar.values()) {
            list.sort(Comparator.comparingInt((Candidate c) -> c.text.length()).reversed()
                    .thenComparingInt(Candidate::id));
        }
    }

    /** {@code text} split into plain fragments and special tokens, in order; no fragment is empty. */
    List<Fragment> split(String text, boolean parseControl) {
        List<Fragment> out = new ArrayList<>();
        if (byFirstChar.isEmpty()) {
            if (!text.isEmpty()) {
                out.add(new Fragment(text, -1));
            }
            return out;
        }
        int plainStart = 0;
        int i = 0;
        while (i < text.length()) {
            Candidate match = matchAt(text, i, parseControl);
            if (match == null) {
                i++;
                continue;
            }
            if (i > plainStart) {
                out.add(new Fragment(text.substring(plainStart, i), -1));
            }
            out.add(new Fragment(match.text, match.id));
            i += match.text.length();
            plainStart = i;
        }
        if (plainStart < text.length()) {
            out.add(new Fragment(text.substring(plainStart), -1));
        }
        return out;
    }

    private Candidate matchAt(String text, int offset, boolean parseControl) {
        List<Candidate> candidates = byFirstChar.get(text.charAt(offset));
        if (candidates == null) {
            return null;
        }
        for (Candidate c : candidates) {
            if ((parseControl || !c.control) && text.startsWith(c.text, offset)) {
                return c;
            }
        }
        return null;
    }
}
