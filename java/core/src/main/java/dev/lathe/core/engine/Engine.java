package dev.lathe.core.engine;

import dev.lathe.core.kv.KvUsage;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The batching engine: many requests served at once by one thread that runs {@link EngineCore}
 * steps (DESIGN.md, "Scheduler", "KV cache"). {@link #submit} returns at once with a handle that
 * streams tokens; {@link #generate} runs an offline batch and waits for it.
 *
 * <p>Thread-safe: any thread may submit, cancel or read the usage. NOTE: every call that touches
 * the core takes the engine's lock; the engine thread holds it for a whole step, so a submit or
 * cancel waits at most one forward pass and is applied between steps, never during one.
 */
public final class Engine implements AutoCloseable {
    private final EngineCore core;
    // NOTE: fair, so a submit or cancel waiting for the lock gets it before the engine thread starts its next step.
    private final ReentrantLock lock = new ReentrantLock(true);
    private final Condition workArrived = lock.newCondition();
    private final Map<String, RequestHandle> handles = new HashMap<>();
    private final Thread worker;
    private volatile boolean closed;
    private volatile RuntimeException failure;

    public Engine(LlamaModel model, Tokenizer tokenizer, EngineConfig config) {
        this.core = new EngineCore(model, tokenizer, config);
        this.worker = Thread.ofPlatform().name("lathe-engine").daemon(true).unstarted(this::loop);
        worker.start();
    }

    /**
     * Queues a request. Throws {@link IllegalArgumentException} for an invalid one (see
     * {@link EngineCore#add}) and {@link IllegalStateException} after {@link #close()}.
     */
    public RequestHandle submit(Request request) {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the engine is closed");
            }
            if (failure != null) {
                throw new IllegalStateException("the engine failed: " + failure.getMessage(), failure);
            }
            RequestHandle handle = new RequestHandle(request.id(), this);
            core.add(request, handle.listener());
            handles.put(request.id(), handle);
            handle.result().whenComplete((out, error) -> {
                lock.lock();
                try {
                    handles.remove(request.id());
                } finally {
                    lock.unlock();
                }
            });
            workArrived.signalAll();
            return handle;
        } finally {
            lock.unlock();
        }
    }

    /** Runs {@code requests} as one batch and returns their outputs in the same order. */
    public List<RequestOutput> generate(List<Request> requests) {
        List<RequestHandle> submitted = new ArrayList<>();
        for (Request r : requests) {
            submitted.add(submit(r));
        }
        List<RequestOutput> outputs = new ArrayList<>();
        for (RequestHandle h : submitted) {
            try {
                outputs.add(h.result().get());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                submitted.forEach(RequestHandle::cancel);
                throw new IllegalStateException("interrupted while generating", e);
            } catch (ExecutionException e) {
                throw new IllegalStateException("request " + h.id() + " failed: " + e.getCause().getMessage(), e.getCause());
            }
        }
        return outputs;
    }

    void abort(String id) {
        lock.lock();
        try {
            core.abort(id);
        } finally {
            lock.unlock();
        }
    }

    /** {@link EngineCore#describeKvPool()}: fixed when the engine starts. */
    public String describeKvPool() {
        lock.lock();
        try {
            return core.describeKvPool();
        } finally {
            lock.unlock();
        }
    }

    public KvUsage usage() {
        lock.lock();
        try {
            return core.usage();
        } finally {
            lock.unlock();
        }
    }

    public EngineCore.Stats stats() {
        lock.lock();
        try {
            return core.stats();
        } finally {
            lock.unlock();
        }
    }

    /** Sequences the scheduler holds back for lack of blocks or batch room, between steps (for metrics). */
    public int waitingSequences() {
        lock.lock();
        try {
            return core.scheduler().waitingCount();
        } finally {
            lock.unlock();
        }
    }

    /** Sequences running (holding KV blocks), between steps (for metrics). */
    public int runningSequences() {
        lock.lock();
        try {
            return core.scheduler().runningCount();
        } finally {
            lock.unlock();
        }
    }

    private void loop() {
        try {
            while (true) {
                lock.lock();
                try {
                    while (!closed && !core.hasWork()) {
                        workArrived.await();
                    }
                    if (closed) {
                        return;
                    }
                    core.step();
                } finally {
                    lock.unlock();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            // NOTE: a failing forward pass is a bug, not bad input: every waiting caller gets it.
            lock.lock();
            try {
                failure = e;
                for (RequestHandle h : List.copyOf(handles.values())) {
                    h.fail(e);
                }
            } finally {
                lock.unlock();
            }
        }
    }

    /** Stops the engine thread; unfinished requests end with "abort". */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            for (String id : List.copyOf(handles.keySet())) {
                core.abort(id);
            }
            closed = true;
            workArrived.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            worker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        core.close();
    }
}
