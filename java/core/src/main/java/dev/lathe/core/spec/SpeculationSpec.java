package dev.lathe.core.spec;

import java.nio.file.Path;

/**
 * The {@code --speculate} option: {@code draft:PATH} (a draft model file), {@code ngram}
 * (prompt lookup) or {@code self:LAYERS} (the target's first LAYERS layers).
 *
 * @param kind      which drafter
 * @param draftPath the draft model, for {@link Kind#DRAFT}; else null
 * @param layers    the draft's layer count, for {@link Kind#SELF}; else 0
 */
public record SpeculationSpec(Kind kind, Path draftPath, int layers) {
    public enum Kind { DRAFT, NGRAM, SELF }

    public static SpeculationSpec parse(String text) {
        String value = text == null ? "" : text.trim();
        if (value.equals("ngram")) {
            return new SpeculationSpec(Kind.NGRAM, null, 0);
        }
        if (value.startsWith("draft:") && value.length() > "draft:".length()) {
            return new SpeculationSpec(Kind.DRAFT, Path.of(value.substring("draft:".length())), 0);
        }
        if (value.startsWith("self:")) {
            String number = value.substring("self:".length());
            int layers;
            try {
                layers = Integer.parseInt(number);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--speculate " + value + ": LAYERS must be a whole number, got \"" + number + "\"");
            }
            if (layers < 1) {
                throw new IllegalArgumentException("--speculate " + value + ": LAYERS must be at least 1");
            }
            return new SpeculationSpec(Kind.SELF, null, layers);
        }
        throw new IllegalArgumentException("--speculate \"" + value + "\": expected draft:PATH, ngram or self:LAYERS");
    }
}
