package dev.lathe.bindings;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Finds and loads liblathe_cuda.so, once per process. In order: the system property
 * {@code lathe.cuda.lib}, the environment variable {@code LATHE_CUDA_LIB} (a path to the .so),
 * else the copy packaged in this jar under {@code native/<os>-<arch>/}, extracted to a temporary
 * file. Failing all three is an {@link UnsatisfiedLinkError} that says which was tried and why.
 */
public final class LatheLibrary {
    public static final String PROPERTY = "lathe.cuda.lib";
    public static final String ENVIRONMENT = "LATHE_CUDA_LIB";
    static final String FILE_NAME = "liblathe_cuda.so";

    private LatheLibrary() {
    }

    // NOTE: the outcome is kept, failure included, rather than thrown from a static initializer:
    // an Error there would leave the class unusable and every later call a bare NoClassDefFoundError
    // instead of the reason.
    private static final class Holder {
        static final Object LOOKUP_OR_ERROR = tryLoad();

        private static Object tryLoad() {
            try {
                return load();
            } catch (UnsatisfiedLinkError e) {
                return e.getMessage();
            }
        }
    }

    /** The loaded library's symbols; loads it on first use; every call after a failure repeats its reason. */
    public static SymbolLookup lookup() {
        Object outcome = Holder.LOOKUP_OR_ERROR;
        if (outcome instanceof SymbolLookup lookup) {
            return lookup;
        }
        throw new UnsatisfiedLinkError((String) outcome);
    }

    /** The jar resource path of this platform's library, e.g. {@code native/linux-x86_64/liblathe_cuda.so}. */
    public static String resourcePath() {
        return "native/" + platform() + "/" + FILE_NAME;
    }

    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        String osName = os.contains("linux") ? "linux" : os.contains("win") ? "windows" : os.contains("mac") ? "macos" : os;
        String archName = arch.equals("amd64") || arch.equals("x86_64") ? "x86-64" : arch.equals("aarch64") ? "aarch64" : arch;
        return osName + "-" + archName.replace("x86-64", "x86_64");
    }

    /** True when an override is set or the jar carries a library for this platform (nothing is loaded). */
    public static boolean isPackaged() {
        return overridePath() != null || LatheLibrary.class.getClassLoader().getResource(resourcePath()) != null;
    }

    private static Path overridePath() {
        String property = System.getProperty(PROPERTY);
        if (property != null && !property.isBlank()) {
            return Path.of(property);
        }
        String env = System.getenv(ENVIRONMENT);
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        return null;
    }

    private static SymbolLookup load() {
        Path path = overridePath();
        String origin;
        if (path != null) {
            origin = System.getProperty(PROPERTY) != null ? "-D" + PROPERTY : "$" + ENVIRONMENT;
            if (!Files.isRegularFile(path)) {
                throw new UnsatisfiedLinkError(origin + " names " + path + ", which is not a file");
            }
        } else {
            origin = "the lathe-bindings jar (" + resourcePath() + ")";
            path = extractPackaged();
        }
        try {
            // NOTE: the global arena keeps the library loaded for the life of the process; the
            // CUDA runtime inside it must never be unloaded while device memory is live.
            return SymbolLookup.libraryLookup(path, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new UnsatisfiedLinkError("could not load " + path + " from " + origin + ": " + e.getMessage());
        }
    }

    private static Path extractPackaged() {
        try (InputStream in = LatheLibrary.class.getClassLoader().getResourceAsStream(resourcePath())) {
            if (in == null) {
                throw new UnsatisfiedLinkError("this build holds no " + FILE_NAME + " for " + platform()
                        + " (nvcc was not found when lathe-bindings was built, or the platform is not supported);"
                        + " build it with CUDA's nvcc installed, or point -D" + PROPERTY + " or $" + ENVIRONMENT
                        + " at a built " + FILE_NAME);
            }
            Path dir = Files.createTempDirectory("lathe-cuda");
            Path file = dir.resolve(FILE_NAME);
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            // NOTE: deleteOnExit runs in reverse order of registration: the directory is
            // registered first so it is deleted after the file in it (the other order left an
            // empty lathe-cuda* directory in the temp folder per process).
            dir.toFile().deleteOnExit();
            file.toFile().deleteOnExit();
            return file;
        } catch (IOException e) {
            throw new UnsatisfiedLinkError("could not extract " + resourcePath() + " to a temporary file: " + e);
        }
    }
}
