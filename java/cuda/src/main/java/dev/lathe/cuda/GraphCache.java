package dev.lathe.cuda;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The captured graphs by key, least recently used first out: a graph pins its activations and
 * staging buffers, so at most {@code capacity} live, and an evicted or replaced one is closed.
 */
final class GraphCache<K, V extends AutoCloseable> {
    private final int capacity;
    private final LinkedHashMap<K, V> entries = new LinkedHashMap<>(16, 0.75f, true);

    GraphCache(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be positive, got " + capacity);
        }
        this.capacity = capacity;
    }

    /** The graph for {@code key} (now the most recently used), or null. */
    V get(K key) {
        return entries.get(key);
    }

    /** Stores {@code value}, closing the graph it replaces and the least recently used beyond capacity. */
    void put(K key, V value) {
        V old = entries.put(key, value);
        if (old != null && old != value) {
            close(old);
        }
        Iterator<Map.Entry<K, V>> it = entries.entrySet().iterator();
        while (entries.size() > capacity && it.hasNext()) {
            V evicted = it.next().getValue();
            it.remove();
            close(evicted);
        }
    }

    /** Closes and forgets the graph for {@code key}, if any. */
    void remove(K key) {
        V old = entries.remove(key);
        if (old != null) {
            close(old);
        }
    }

    int size() {
        return entries.size();
    }

    /** Closes every graph. */
    void clear() {
        RuntimeException first = null;
        for (V v : entries.values()) {
            try {
                v.close();
            } catch (Exception e) {
                if (first == null) {
                    first = e instanceof RuntimeException r ? r : new IllegalStateException(e);
                }
            }
        }
        entries.clear();
        if (first != null) {
            throw first;
        }
    }

    private static void close(AutoCloseable c) {
        try {
            c.close();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
