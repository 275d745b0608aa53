package dev.lathe.core.engine;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A submitted request: its tokens stream through {@link #tokens()} as they are sampled, its
 * output completes {@link #result()}, and {@link #cancel()} aborts it at any time (its samples
 * end with finish reason "abort" and its KV blocks are freed before the next step).
 */
public final class RequestHandle {
    private static final TokenEvent END = new TokenEvent(-1, -1, "", null);

    private final String id;
    private final Engine engine;
    private final BlockingQueue<TokenEvent> events = new LinkedBlockingQueue<>();
    private final CompletableFuture<RequestOutput> result = new CompletableFuture<>();

    RequestHandle(String id, Engine engine) {
        this.id = id;
        this.engine = engine;
    }

    public String id() {
        return id;
    }

    /** Completes with the output when every sample has ended (or exceptionally if the engine failed). */
    public CompletableFuture<RequestOutput> result() {
        return result;
    }

    /** Waits for the output. */
    public RequestOutput await() throws InterruptedException {
        try {
            return result.get();
        } catch (ExecutionException e) {
            throw new IllegalStateException("request " + id + " failed: " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** Aborts the request; a no-op once it has finished. */
    public void cancel() {
        engine.abort(id);
    }

    public boolean isDone() {
        return result.isDone();
    }

    /**
     * The generated tokens as they come, blocking for the next one; the iteration ends when the
     * request does. Meant for one consumer.
     */
    public Iterator<TokenEvent> tokens() {
        return new Iterator<>() {
            private TokenEvent next;

            @Override
            public boolean hasNext() {
                if (next == null) {
                    try {
                        next = events.take();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("interrupted while waiting for tokens of request " + id, e);
                    }
                }
                if (next == END) {
                    events.offer(END); // stay at the end for later calls
                    return false;
                }
                return true;
            }

            @Override
            public TokenEvent next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                TokenEvent e = next;
                next = null;
                return e;
            }
        };
    }

    EngineCore.RequestListener listener() {
        return new EngineCore.RequestListener() {
            @Override
            public void onToken(TokenEvent event) {
                events.offer(event);
            }

            @Override
            public void onFinished(RequestOutput output) {
                events.offer(END);
                result.complete(output);
            }
        };
    }

    void fail(Throwable cause) {
        events.offer(END);
        result.completeExceptionally(cause);
    }
}
