package dev.lathe.core.io;

/**
 * A model, tokenizer or config file that cannot be used: truncated, hostile, or of a kind
 * Lathe does not support. The message always names the file (or argument) and says what was
 * expected and what was found.
 */
public class ModelFormatException extends RuntimeException {
    private final String source;
    private final String problem;

    public ModelFormatException(String source, String problem) {
        super(source + ": " + problem);
        this.source = source;
        this.problem = problem;
    }

    public ModelFormatException(String source, String problem, Throwable cause) {
        super(source + ": " + problem, cause);
        this.source = source;
        this.problem = problem;
    }

    /** What was wrong, without the source. */
    public String problem() {
        return problem;
    }

    /** The file, tensor or argument the problem was found in. */
    public String source() {
        return source;
    }
}
