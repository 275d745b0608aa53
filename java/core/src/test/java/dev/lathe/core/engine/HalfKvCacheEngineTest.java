package dev.lathe.core.engine;

import dev.lathe.core.backend.KvDtype;
import dev.lathe.core.backend.cpu.CpuBackend;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.generate.Generator;
import dev.lathe.core.kv.KvPoolSize;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.model.LlamaModel;
import dev.lathe.core.sample.SamplingParams;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.testing.SharedData;
import dev.lathe.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** f16 and bf16 KV caches end to end: the engine's sizing, and greedy generation against the f32 cache. */
class HalfKvCacheEngineTest {

    @Test
    void aHalfPoolHoldsTwiceTheBlocksOfAnF32PoolInTheSameBytes(@TempDir Path tmp) {
        assertEquals(KvPoolSize.bytesPerBlock(3, 16, 4, 40), 2 * KvPoolSize.bytesPerBlock(3, 16, 4, 40, KvDtype.F16));
        assertEquals(KvPoolSize.bytesPerBlock(3, 16, 4, 40, KvDtype.F16), KvPoolSize.bytesPerBlock(3, 16, 4, 40, KvDtype.BF16));
        assertEquals(KvPoolSize.bytesPerBlock(3, 16, 4, 40), KvPoolSize.bytesPerBlock(3, 16, 4, 40, KvDtype.F32));

        Path file = tmp.resolve("m.gguf");
        SyntheticModel.small(GgmlType.F32).write(file);
        try (CpuBackend backend = new CpuBackend(1); LoadedModel loaded = ModelLoader.load(file)) {
            LlamaModel model = new LlamaModel(loaded, backend);
            Tokenizer tokenizer = TokenizerLoader.forModel(loaded, null);
            LlamaConfig c = model.config();
            long f32Block = KvPoolSize.bytesPerBlock(c.layers(), 16, c.kvHeads(), c.headDim());
            // A budget of 10.5 f32 blocks: 10 f32 blocks, 21 f16 or bf16 blocks.
            long budget = 10 * f32Block + f32Block / 2;
            EngineConfig config = EngineConfig.defaults().withKvMemory(budget).withBlockSize(16);
            try (EngineCore core = new EngineCore(model, tokenizer, config)) {
                assertEquals(10, core.usage().total());
                assertTrue(core.describeKvPool().contains("10 blocks of 16 tokens, f32"), core.describeKvPool());
            }
            for (KvDtype half : new KvDtype[] {KvDtype.F16, KvDtype.BF16}) {
                try (EngineCore core = new EngineCore(model, tokenizer, config.withKvDtype(half))) {
                    assertEquals(21, core.usage().total(), half.label());
                    assertTrue(core.describeKvPool().contains("21 blocks of 16 tokens, " + half.label()), core.describeKvPool());
                }
            }
        }
    }

    @Test
    void kvDtypeNamesAreParsedAndBadOnesNamed() {
        assertEquals(KvDtype.F16, KvDtype.parse("f16", "--kv-dtype"));
        assertEquals(KvDtype.BF16, KvDtype.parse("BF16", "--kv-dtype"));
        assertEquals(KvDtype.F32, KvDtype.parse(" f32 ", "--kv-dtype"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvDtype.parse("fp8", "--kv-dtype"));
        assertTrue(e.getMessage().contains("--kv-dtype") && e.getMessage().contains("'fp8'")
                && e.getMessage().contains("f32, f16, bf16 or int8"), e.getMessage());
    }

    /**
     * Greedy stories260K, 256 new tokens from three prompts. Observed on the x86 dev box (AVX-512,
     * 2 threads): with the 512-bit kernels f16 KV gives the f32 tokens for all 256 tokens of all
     * three prompts; with -Dlathe.cpu.vectorBits=256 (the AVX2 kernels, other summation order)
     * 'Tim' first differs at token 95. bf16 KV (8 significant bits) follows f32 for 256, 36 and 53
     * tokens at both widths, then takes another word where two logits were close. Nothing bounds
     * where a near tie in the logits falls, so these are observations, asserted with a margin: f16
     * equal for the first 64 tokens, bf16 for the first 32. A kernel that misreads the half pools
     * fails within a few tokens.
     */
    @Test
    void stories260KGreedyWithHalfKvFollowsF32Kv() {
        Path dir = SharedData.require("models/stories260K");
        try (CpuBackend backend = new CpuBackend(2); LoadedModel f32 = ModelLoader.load(dir.resolve("stories260K-f32.gguf"))) {
            Tokenizer tok = TokenizerLoader.forModel(f32, null);
            Generator plain = new Generator(new LlamaModel(f32, backend), tok);
            SamplingParams params = SamplingParams.greedy().withMaxNewTokens(256);
            for (String prompt : new String[] {"Once upon a time", "Tim", "Lily liked to play in the park. One day"}) {
                int[] expected = plain.generate(prompt, params, null).tokens();
                int[] f16 = plain.withKvDtype(KvDtype.F16).generate(prompt, params, null).tokens();
                int[] bf16 = plain.withKvDtype(KvDtype.BF16).generate(prompt, params, null).tokens();
                assertTrue(expected.length >= 64 && f16.length >= 64 && bf16.length >= 32, "fewer tokens generated than compared");
                assertArrayEquals(Arrays.copyOf(expected, 64), Arrays.copyOf(f16, 64), "f16 KV, prompt '" + prompt + "'");
                assertArrayEquals(Arrays.copyOf(expected, 32), Arrays.copyOf(bf16, 32), "bf16 KV, prompt '" + prompt + "'");
            }
        }
    }
}
