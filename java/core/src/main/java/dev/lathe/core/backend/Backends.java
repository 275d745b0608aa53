package dev.lathe.core.backend;

import dev.lathe.core.backend.cpu.CpuBackend;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** Opens a backend by name: {@code cpu} is built in; others come from {@link BackendProvider}s on the class path. */
public final class Backends {
    private Backends() {
    }

    public static Backend open(String name, int threads) {
        if (name.equals("cpu")) {
            return new CpuBackend(threads);
        }
        List<String> available = new ArrayList<>(List.of("cpu"));
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
}
