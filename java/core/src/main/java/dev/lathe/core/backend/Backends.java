package dev.lathe.core.backend;

import dev.lathe.core.backend.cpu.CpuBackend;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens a backend by name: {@code cpu} is built in; others come from {@link BackendProvider}s on
 * the class path; {@code auto} takes {@code cuda} when it starts and {@code cpu} otherwise,
 * logging which one runs and, for cpu, why cuda did not start.
 */
public final class Backends {
    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    private Backends() {
    }

    public static Backend open(String name, int threads) {
        if (name.equals("cpu")) {
            return new CpuBackend(threads);
        }
        if (name.equals("auto")) {
            return openAuto(threads);
        }
        List<String> available = new ArrayList<>(List.of("cpu", "auto"));
        for (BackendProvider provider : ServiceLoader.load(BackendProvider.class)) {
            if (provider.name().equals(name)) {
                return provider.create(threads);
            }
            available.add(provider.name());
        }
        throw new IllegalArgumentException("backend '" + name + "' is not available in this build (available: "
                + String.join(", ", available) + ")" + (name.equals("cuda")
                ? "; the CUDA backend needs the lathe-cuda module and its native library, which this build does not include"
                : ""));
    }

    private static Backend openAuto(int threads) {
        String reason = "this build has no CUDA backend";
        for (BackendProvider provider : ServiceLoader.load(BackendProvider.class)) {
            if (provider.name().equals("cuda")) {
                try {
                    Backend cuda = provider.create(threads);
                    LOG.info("backend auto: using {}", cuda.describe());
                    return cuda;
                } catch (BackendUnavailableException e) {
                    reason = e.getMessage();
                }
            }
        }
        CpuBackend cpu = new CpuBackend(threads);
        LOG.info("backend auto: using {} ({})", cpu.describe(), reason);
        return cpu;
    }
}
