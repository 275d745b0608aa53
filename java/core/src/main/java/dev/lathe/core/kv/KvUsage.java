package dev.lathe.core.kv;

/**
 * A snapshot of the KV pool: {@code used + cached + free == total}.
 *
 * @param used      blocks held by at least one sequence
 * @param cached    blocks no sequence holds that keep a reusable prefix (evicted when needed)
 * @param free      blocks with nothing worth keeping
 * @param total     blocks in the pool
 * @param evictions cached blocks evicted so far to make room
 */
public record KvUsage(int used, int cached, int free, int total, long evictions) {
    @Override
    public String toString() {
        return "KV blocks: " + used + " used, " + cached + " cached, " + free + " free of " + total;
    }
}
