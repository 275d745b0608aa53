package dev.lathe.core.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.lathe.core.engine.EngineCore;
import dev.lathe.core.engine.Request;
import dev.lathe.core.engine.RequestOutput;
import dev.lathe.core.engine.TokenEvent;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/** Runs requests on an {@link EngineCore} step by step, checking the KV invariant after every step. */
public final class EngineRuns {
    private EngineRuns() {
    }

    /** {@link #runToEnd(EngineCore, List, IntConsumer)} with nothing between steps. */
    public static Map<String, RequestOutput> runToEnd(EngineCore core, List<Request> requests) {
        return runToEnd(core, requests, step -> { });
    }

    /**
     * Adds {@code requests}, steps until no work is left ({@code between} runs after each step:
     * preempt, abort...), checks the block invariant after every step and that no block is held at
     * the end; returns each request's output by id.
     */
    public static Map<String, RequestOutput> runToEnd(EngineCore core, List<Request> requests, IntConsumer between) {
        Map<String, RequestOutput> outputs = new HashMap<>();
        for (Request r : requests) {
            core.add(r, new EngineCore.RequestListener() {
                @Override
                public void onToken(TokenEvent event) {
                }

                @Override
                public void onFinished(RequestOutput output) {
                    outputs.put(output.id(), output);
                }
            });
        }
        for (int step = 0; core.hasWork(); step++) {
            core.step();
            assertNull(core.checkKvInvariant());
            between.accept(step);
        }
        assertEquals(0, core.usage().used(), "blocks still held after every request ended: " + core.usage());
        return outputs;
    }
}
