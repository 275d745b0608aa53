package dev.lathe.core.io;

/**
 * A model, tokenizer or config file that cannot be used: truncated, hostile, or of a kind
 * Lathe does not support. The message always names the file (or argument) and says what was
 * expected and what was found.
 */
public class ModelFormatException extends RuntimeException {
    private final String source;

    public ModelFormatException(String source, String problem) {
        super(source + ": " + problem);
        this.source = source;
    }

    public ModelFormatException(String source, String problem, Throwable cause) {
        super(source + ": " + problem, cause);
        this.source = source;
    }

    /** The file, tensor or argument the problem was found in. */
    public String source() {
        return source;
    }
}
