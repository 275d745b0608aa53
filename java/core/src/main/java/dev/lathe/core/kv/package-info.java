/**
 * The paged KV cache's bookkeeping (DESIGN.md, "KV cache"): {@link dev.lathe.core.kv.BlockAllocator}
 * (reference counts, free and cached blocks, LRU eviction), {@link dev.lathe.core.kv.KvBlockManager}
 * (per-sequence block tables, prefix reuse, fork with copy on write) and
 * {@link dev.lathe.core.kv.KvPoolSize} (blocks from a memory budget). The K/V data itself lives in a
 * backend's {@link dev.lathe.core.backend.KvCache}.
 */
package dev.lathe.core.kv;
