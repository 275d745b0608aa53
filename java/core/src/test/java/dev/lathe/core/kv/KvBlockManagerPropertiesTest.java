package dev.lathe.core.kv;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Random mixes of submit / decode / fork / finish / abort / preempt on a small pool. Besides the
 * bookkeeping invariant ("free, cached or owned with the right reference count", nothing leaked at
 * the end) it simulates the KV contents: each written slot holds its token id, copy on write
 * copies, and every live sequence must read back exactly its own computed tokens.
 */
class KvBlockManagerPropertiesTest {
    private static final int SUBMIT = 0, DECODE = 1, FORK = 2, FINISH = 3, ABORT = 4, PREEMPT = 5;

    /** A simulated sequence: its tokens and how many are in the cache. */
    private static final class Seq {
        int[] tokens;
        int computed;

        Seq(int[] tokens) {
            this.tokens = tokens;
        }
    }

    private static final class World {
        final KvBlockManager manager;
        final int[][] slots; // [block][offset] token id written there, -1 never
        final Map<Long, Seq> live = new HashMap<>();
        long nextId;

        World(int blocks, int blockSize, boolean caching) {
            manager = new KvBlockManager(blocks, blockSize, caching);
            slots = new int[blocks][blockSize];
            for (int[] row : slots) {
                Arrays.fill(row, -1);
            }
        }

        /** Computes tokens [computed, upTo) of seq, as a forward pass would; false when out of blocks. */
        boolean compute(long id, Seq s, int upTo) {
            if (!manager.ensureCapacity(id, upTo, s.computed)) {
                return false;
            }
            for (KvBlockManager.BlockCopy c : manager.drainCopies()) {
                slots[c.to()] = slots[c.from()].clone();
            }
            int[] table = manager.blockTable(id);
            int bs = manager.blockSize();
            for (int p = s.computed; p < upTo; p++) {
                slots[table[p / bs]][p % bs] = s.tokens[p];
            }
            s.computed = upTo;
            manager.markComputed(id, s.tokens, upTo);
            return true;
        }

        /** Admits seq with its prompt prefix-cached where possible and a chunk computed; false when it did not fit. */
        boolean admit(long id, Seq s, int chunk) {
            s.computed = manager.allocatePrompt(id, s.tokens, s.tokens.length);
            if (!compute(id, s, Math.min(s.tokens.length, s.computed + chunk))) {
                manager.free(id);
                return false;
            }
            live.put(id, s);
            return true;
        }

        void check() {
            assertNull(manager.checkInvariant());
            KvUsage u = manager.usage();
            assertEquals(u.total(), u.used() + u.cached() + u.free());
            int bs = manager.blockSize();
            for (Map.Entry<Long, Seq> e : live.entrySet()) {
                int[] table = manager.blockTable(e.getKey());
                Seq s = e.getValue();
                for (int p = 0; p < s.computed; p++) {
                    assertEquals(s.tokens[p], slots[table[p / bs]][p % bs], "sequence " + e.getKey() + " position " + p);
                }
            }
        }
    }

    @Property(tries = 300)
    void randomOperationsKeepTheInvariantAndLeakNothing(
            @ForAll @IntRange(min = 1, max = 40) int blocks,
            @ForAll @IntRange(min = 1, max = 6) int blockSize,
            @ForAll boolean caching,
            @ForAll long seed,
            @ForAll @Size(max = 120) List<@IntRange(min = 0, max = 5) Integer> operations) {
        World w = new World(blocks, blockSize, caching);
        SplittableRandom random = new SplittableRandom(seed);
        int[][] sharedPrefixes = {random.ints(20, 0, 3).toArray(), random.ints(20, 0, 3).toArray()};
        for (int op : operations) {
            List<Long> ids = new ArrayList<>(w.live.keySet());
            Long pick = ids.isEmpty() ? null : ids.get(random.nextInt(ids.size()));
            switch (op) {
                case SUBMIT -> {
                    int[] prefix = sharedPrefixes[random.nextInt(2)];
                    int shared = random.nextInt(prefix.length + 1);
                    int[] tokens = new int[shared + 1 + random.nextInt(8)];
                    System.arraycopy(prefix, 0, tokens, 0, shared);
                    for (int i = shared; i < tokens.length; i++) {
                        tokens[i] = random.nextInt(3);
                    }
                    w.admit(w.nextId++, new Seq(tokens), 1 + random.nextInt(tokens.length));
                }
                case DECODE -> {
                    if (pick != null) {
                        Seq s = w.live.get(pick);
                        if (s.computed == s.tokens.length) {
                            s.tokens = Arrays.copyOf(s.tokens, s.tokens.length + 1);
                            s.tokens[s.tokens.length - 1] = random.nextInt(3);
                        }
                        if (!w.compute(pick, s, s.tokens.length)) {
                            w.manager.free(pick); // preempted: out of blocks
                            w.live.remove(pick);
                        }
                    }
                }
                case FORK -> {
                    if (pick != null) {
                        Seq parent = w.live.get(pick);
                        Seq child = new Seq(Arrays.copyOf(parent.tokens, parent.computed));
                        child.computed = parent.computed;
                        long id = w.nextId++;
                        w.manager.fork(pick, id);
                        w.live.put(id, child);
                    }
                }
                case FINISH, ABORT -> {
                    if (pick != null) {
                        w.manager.free(pick);
                        w.live.remove(pick);
                    }
                }
                case PREEMPT -> {
                    if (pick != null) {
                        Seq s = w.live.remove(pick);
                        w.manager.free(pick);
                        Seq resumed = new Seq(s.tokens);
                        w.admit(pick, resumed, resumed.tokens.length); // recompute, maybe from the cache
                    }
                }
                default -> throw new AssertionError(op);
            }
            w.check();
        }
        for (long id : new ArrayList<>(w.live.keySet())) {
            w.manager.free(id);
            w.live.remove(id);
        }
        w.check();
        KvUsage u = w.manager.usage();
        assertEquals(0, u.used(), "blocks leaked: " + u);
        assertEquals(0, w.manager.sequenceCount());
        if (!caching) {
            assertEquals(blocks, u.free());
        }
    }
}
