package dev.lathe.tools.quant;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.function.Consumer;

/**
 * Writes a file under a temporary name beside its target and renames it into place when done,
 * so an interrupted or failed run never leaves a half-written file under the target's name.
 */
public final class AtomicOutput {
    private AtomicOutput() {
    }

    /**
     * Runs {@code writer} on a temporary path in {@code target}'s directory, then moves the result
     * to {@code target}. An existing target is an error unless {@code force}. On failure (or JVM
     * shutdown mid-write) the temporary file is deleted.
     */
    public static void write(Path target, boolean force, Consumer<Path> writer) {
        Path absolute = target.toAbsolutePath();
        if (Files.exists(absolute) && !force) {
            throw new IllegalArgumentException(target + " exists; pass --force to overwrite it");
        }
        Path dir = absolute.getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("cannot write " + target + ": directory " + dir + " does not exist");
        }
        Path partial;
        try {
            partial = Files.createTempFile(dir, "." + absolute.getFileName() + ".", ".partial");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary file beside " + target, e);
        }
        Thread cleanup = new Thread(() -> deleteQuietly(partial));
        Runtime.getRuntime().addShutdownHook(cleanup);
        boolean done = false;
        try {
            writer.accept(partial);
            // NOTE: temporary files are created owner-only (0600); a model is an ordinary file (0644).
            if (Files.getFileStore(partial).supportsFileAttributeView(java.nio.file.attribute.PosixFileAttributeView.class)) {
                Files.setPosixFilePermissions(partial, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            }
            try {
                Files.move(partial, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move the finished file to " + target, e);
        } finally {
            if (!done) {
                deleteQuietly(partial);
            }
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or will run: nothing to undo
            }
        }
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // best effort: the file has a .partial name, never the target's
        }
    }
}
