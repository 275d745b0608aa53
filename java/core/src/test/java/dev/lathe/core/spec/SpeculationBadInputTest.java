package dev.lathe.core.spec;

import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad speculation settings end with a message that names the problem. */
class SpeculationBadInputTest {

    @Test
    void aDraftWithAnotherVocabularyIsRefused(@TempDir Path tmp) {
        Path targetFile = tmp.resolve("target.gguf");
        Path draftFile = tmp.resolve("draft.gguf");
        SyntheticModel.small(GgmlType.F32).write(targetFile);
        new SyntheticModel(64, 2, 4, 2, 128, 1024, 256, GgmlType.F32, 1).write(draftFile);
        try (CpuBackend backend = new CpuBackend(1); LoadedModel target = ModelLoader.load(targetFile);
             LoadedModel draft = ModelLoader.load(draftFile)) {
            LlamaModel targetModel = new LlamaModel(target, backend);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelDrafter.separate("draft.gguf",
                    new LlamaModel(draft, backend), TokenizerLoader.forModel(draft, null), targetModel,
                    TokenizerLoader.forModel(target, null), null));
            assertTrue(e.getMessage().contains("draft model draft.gguf") && e.getMessage().contains("1024")
                    && e.getMessage().contains("2048"), e.getMessage());
        }
    }

    @Test
    void badDraftLengthsAndLayerCountsAreRefused(@TempDir Path tmp) {
        assertThrows(IllegalArgumentException.class, () -> new Speculation(new NgramDrafter(), 0));
        assertThrows(IllegalArgumentException.class, () -> new DraftLength(0));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SpeculationSpec.parse("self:x"))
                .getMessage().contains("whole number"));
        assertThrows(IllegalArgumentException.class, () -> SpeculationSpec.parse("self:0"));
        assertThrows(IllegalArgumentException.class, () -> SpeculationSpec.parse("draft:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SpeculationSpec.parse("medusa"))
                .getMessage().contains("draft:PATH, ngram or self:LAYERS"));
        assertEquals(new SpeculationSpec(SpeculationSpec.Kind.SELF, null, 2), SpeculationSpec.parse("self:2"));
        assertEquals(SpeculationSpec.Kind.NGRAM, SpeculationSpec.parse("ngram").kind());

        Path file = tmp.resolve("m.gguf");
        SyntheticModel.small(GgmlType.F32).write(file); // 4 layers
        try (CpuBackend backend = new CpuBackend(1); LoadedModel loaded = ModelLoader.load(file)) {
            LlamaModel model = new LlamaModel(loaded, backend);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ModelDrafter.selfSpeculative(model, 4));
            assertTrue(e.getMessage().contains("[1, 3]"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ModelDrafter.selfSpeculative(model, 0));
        }
    }
}
