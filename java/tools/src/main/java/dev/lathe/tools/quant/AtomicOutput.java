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

    /**
     * Runs {@code writer} on a new temporary directory beside {@code target}, then renames it to
     * {@code target}. An existing target is an error unless {@code force}; then it must be an
     * empty directory or hold only files (a previous export), which are deleted first. On failure
     * the temporary directory and its files are deleted.
     */
    public static void writeDirectory(Path target, boolean force, Consumer<Path> writer) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        if (Files.exists(absolute) && !force) {
            throw new IllegalArgumentException(target + " exists; pass --force to overwrite it");
        }
        if (Files.exists(absolute) && !Files.isDirectory(absolute)) {
            throw new IllegalArgumentException(target + " exists and is not a directory");
        }
        if (dir != null && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("cannot write " + target + ": directory " + dir + " does not exist");
        }
        Path partial;
        try {
            partial = Files.createTempDirectory(dir, "." + absolute.getFileName() + ".");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary directory beside " + target, e);
        }
        boolean done = false;
        try {
            writer.accept(partial);
            if (Files.getFileStore(partial).supportsFileAttributeView(java.nio.file.attribute.PosixFileAttributeView.class)) {
                Files.setPosixFilePermissions(partial, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            if (Files.exists(absolute)) {
                deleteFlatDirectory(absolute);
            }
            Files.move(partial, absolute, StandardCopyOption.ATOMIC_MOVE);
            done = true;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move the finished directory to " + target, e);
        } finally {
            if (!done) {
                try {
                    deleteFlatDirectory(partial);
                } catch (IOException | IllegalArgumentException ignored) {
                    // best effort: the directory has a hidden temporary name, never the target's
                }
            }
        }
    }

    /** Deletes a directory that holds only regular files; one with subdirectories is refused. */
    private static void deleteFlatDirectory(Path directory) throws IOException {
        java.util.List<Path> entries;
        try (var files = Files.list(directory)) {
            entries = files.toList();
        }
        for (Path p : entries) {
            if (Files.isDirectory(p)) {
                throw new IllegalArgumentException(directory + " holds a directory (" + p.getFileName()
                        + "); Lathe overwrites only a directory of files it wrote");
            }
        }
        for (Path p : entries) {
            Files.delete(p);
        }
        Files.delete(directory);
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // best effort: the file has a .partial name, never the target's
        }
    }
}
