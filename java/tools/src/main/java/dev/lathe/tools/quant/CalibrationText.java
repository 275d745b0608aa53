package dev.lathe.tools.quant;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.tokenizer.Tokenizer;
import dev.lathe.core.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Calibration windows from a text file: the text is tokenized once and cut into consecutive,
 * non-overlapping windows of {@code seqLen} tokens, each starting with BOS (as the model saw text
 * in training; when the tokenizer has one) followed by {@code seqLen - 1} text tokens.
 */
public final class CalibrationText {
    private CalibrationText() {
    }

    /**
     * Up to {@code samples} windows; fewer when the text runs out (at least one).
     *
     * @throws IllegalArgumentException when the file is missing, empty, or shorter than one window
     */
    public static List<int[]> windows(Path file, Tokenizer tokenizer, int samples, int seqLen) {
        String text;
        try {
            text = Files.readString(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IllegalArgumentException("calibration file " + file + " does not exist");
        } catch (IOException e) {
            throw new UncheckedIOException("reading calibration file " + file, e);
        }
        if (text.isBlank()) {
            throw new IllegalArgumentException("calibration file " + file + " is empty");
        }
        int[] tokens = tokenizer.encode(text);
        int bos = tokenizer.bosId();
        int perWindow = bos >= 0 ? seqLen - 1 : seqLen;
        if (tokens.length < perWindow) {
            throw new IllegalArgumentException("calibration file " + file + " is too short: " + tokens.length
                    + " tokens, and one window of --seq-len " + seqLen + " needs " + perWindow);
        }
        List<int[]> windows = new ArrayList<>();
        for (int start = 0; start + perWindow <= tokens.length && windows.size() < samples; start += perWindow) {
            int[] w = new int[seqLen];
            w[0] = bos;
            System.arraycopy(tokens, start, w, seqLen - perWindow, perWindow);
            windows.add(w);
        }
        return windows;
    }

    /**
     * The windows for {@code model}: its own tokenizer, windows of {@code seqLen} tokens capped at
     * its context length.
     *
     * @throws IllegalArgumentException when the model carries no tokenizer data
     */
    public static List<int[]> windowsFor(LoadedModel model, Path file, int samples, int seqLen) {
        if (model.vocabulary() == null) {
            throw new IllegalArgumentException(model.source() + " has no tokenizer data: calibration text cannot be tokenized");
        }
        return windows(file, Tokenizers.create(model.vocabulary()), samples, Math.min(seqLen, model.config().contextLength()));
    }

    /** The windows for logs: how many, how long. */
    public static String describe(List<int[]> windows) {
        return windows.size() + " windows of " + windows.getFirst().length + " tokens";
    }
}
