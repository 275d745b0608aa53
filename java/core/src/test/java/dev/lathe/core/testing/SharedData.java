package dev.lathe.core.testing;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finds test data in ../shared (never committed into the project). Without it a test is skipped
 * with a message, except under CI=true, where missing data is a failure.
 */
public final class SharedData {
    private SharedData() {
    }

    /** The shared folder: -Dlathe.shared, else ../shared from the working directory or its parents. */
    public static Path root() {
        String configured = System.getProperty("lathe.shared");
        if (configured != null && Files.isDirectory(Path.of(configured))) {
            return Path.of(configured).toAbsolutePath().normalize();
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolveSibling("shared");
            if (Files.isDirectory(candidate.resolve("models"))) {
                return candidate;
            }
        }
        return null;
    }

    /** {@code ../shared/<relative>}; skips (or fails under CI=true) when it is absent. */
    public static Path require(String relative) {
        Path root = root();
        Path file = root == null ? null : root.resolve(relative);
        if (file == null || !Files.exists(file)) {
            String message = "test data ../shared/" + relative + " is absent";
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                fail(message + " (CI=true: shared data must be present)");
            }
            Assumptions.abort(message + "; skipping");
        }
        return file;
    }
}
