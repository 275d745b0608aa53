package dev.lathe.core.spec;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The draft model's shared K/V pool: batched rounds, rollback, and a full pool. */
class ModelDrafterTest {
    @TempDir
    static Path tmp;
    private static CpuBackend backend;
    private static LoadedModel loaded;
    private static LlamaModel model;

    @BeforeAll
    static void load() {
        backend = new CpuBackend(1);
        Path file = tmp.resolve("small.gguf");
        SyntheticModel.small(GgmlType.F32).write(file);
        loaded = ModelLoader.load(file);
        model = new LlamaModel(loaded, backend);
    }

    @AfterAll
    static void close() {
        loaded.close();
        backend.close();
    }

    private static int[] history(long seed, int length) {
        return new SplittableRandom(seed).ints(length, 3, 2048).toArray();
    }

    @Test
    void batchedDraftsEqualEachSessionDraftingAlone() {
        SamplingParams greedy = SamplingParams.greedy();
        int[][] histories = {history(1, 20), history(2, 3), history(3, 41)};
        int[] ks = {3, 5, 1};
        int[][] alone = new int[3][];
        try (ModelDrafter drafter = ModelDrafter.selfSpeculative(model, 2)) {
            for (int i = 0; i < 3; i++) {
                try (DraftSession s = drafter.open(greedy, 64)) {
                    alone[i] = s.propose(histories[i], histories[i].length, ks[i]).tokens();
                }
            }
        }
        try (ModelDrafter drafter = ModelDrafter.selfSpeculative(model, 2)) {
            drafter.reserve(4 * 64); // room for the three sessions and a fresh one
            DraftSession[] sessions = {drafter.open(greedy, 64), drafter.open(greedy, 64), drafter.open(greedy, 64)};
            List<Draft> drafts = drafter.proposeAll(List.of(new DraftRequest(sessions[0], histories[0], 20, 3),
                    new DraftRequest(sessions[1], histories[1], 3, 5), new DraftRequest(sessions[2], histories[2], 41, 1)));
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(alone[i], drafts.get(i).tokens(), "session " + i);
                assertEquals(ks[i], drafts.get(i).size());
            }
            // Rollback: the first drafts rejected, a different token accepted instead; the session
            // must draft what a fresh session drafts for the new history.
            int[] changed = java.util.Arrays.copyOf(histories[0], 21);
            changed[20] = (drafts.get(0).tokens()[0] + 1) % 2048;
            int[] again = sessions[0].propose(changed, 21, 3).tokens();
            try (DraftSession fresh = drafter.open(greedy, 64)) {
                assertArrayEquals(fresh.propose(changed, 21, 3).tokens(), again);
            }
            for (DraftSession s : sessions) {
                s.close();
            }
        }
    }

    @Test
    void aFullPoolMeansNoDraftsUntilASessionCloses() {
        SamplingParams greedy = SamplingParams.greedy();
        try (ModelDrafter drafter = ModelDrafter.selfSpeculative(model, 1)) {
            drafter.reserve(48); // 3 blocks of 16
            DraftSession a = drafter.open(greedy, 40);
            DraftSession b = drafter.open(greedy, 40);
            assertEquals(4, a.propose(history(4, 30), 30, 4).size()); // positions up to 33: 3 blocks
            assertEquals(0, b.propose(history(5, 30), 30, 4).size());
            a.close();
            assertEquals(4, b.propose(history(5, 30), 30, 4).size());
            b.close();
        }
    }

    @Test
    void sessionsOfAnotherDrafterAreRefused() {
        try (ModelDrafter one = ModelDrafter.selfSpeculative(model, 1); ModelDrafter other = ModelDrafter.selfSpeculative(model, 1);
             DraftSession s = other.open(SamplingParams.greedy(), 16)) {
            assertThrows(IllegalArgumentException.class, () -> one.proposeAll(List.of(new DraftRequest(s, history(6, 4), 4, 2))));
        }
    }
}
