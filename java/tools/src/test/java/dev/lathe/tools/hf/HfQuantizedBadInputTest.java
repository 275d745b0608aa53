package dev.lathe.tools.hf;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lathe.core.format.hf.HfModelReader;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Quantized Hugging Face directories that are wrong: configs Lathe does not read, and packed
 * tensors whose shapes, group indices or quant states do not fit. Each is a
 * {@link ModelFormatException} naming the field or tensor, never a crash or an allocation sized by
 * the bad number. A one-layer model (dim 64, 4 heads, FFN 128) is written by hand.
 */
class HfQuantizedBadInputTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int DIM = 64;
    private static final int FFN = 128;
    private static final int VOCAB = 32;

    private enum Kind { GPTQ, AWQ, NF4, NF4_DQ }

    private static ObjectNode config() {
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("hidden_size", DIM);
        c.put("intermediate_size", FFN);
        c.put("num_hidden_layers", 1);
        c.put("num_attention_heads", 4);
        c.put("num_key_value_heads", 4);
        c.put("vocab_size", VOCAB);
        c.put("max_position_embeddings", 64);
        c.put("rms_norm_eps", 1e-5);
        return c;
    }

    private static WeightMatrix matrix(Random random, LatheFormat format, int rows, int cols, Arena arena) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) random.nextGaussian() * 0.1f;
        }
        return WeightMatrices.of("w", (WeightFormat) format, rows, cols, LatheEncoder.encode(format, v, rows, cols, arena));
    }

    /** Writes a valid one-layer model packed as {@code kind}; {@code tamper} edits the tensors and config before writing. */
    private static Path write(Path dir, Kind kind, Consumer<SafetensorsWriter> extra, Consumer<ObjectNode> tamperConfig,
                              String skip) throws Exception {
        Random random = new Random(7);
        SafetensorsWriter out = new SafetensorsWriter();
        try (Arena arena = Arena.ofConfined()) {
            out.addFloat32("model.embed_tokens.weight", new long[] {VOCAB, DIM}, new float[VOCAB * DIM]);
            out.addFloat32("lm_head.weight", new long[] {VOCAB, DIM}, new float[VOCAB * DIM]);
            out.addFloat32("model.norm.weight", new long[] {DIM}, new float[DIM]);
            out.addFloat32("model.layers.0.input_layernorm.weight", new long[] {DIM}, new float[DIM]);
            out.addFloat32("model.layers.0.post_attention_layernorm.weight", new long[] {DIM}, new float[DIM]);
            String[][] linears = {{"self_attn.q_proj", "64", "64"}, {"self_attn.k_proj", "64", "64"}, {"self_attn.v_proj", "64", "64"},
                {"self_attn.o_proj", "64", "64"}, {"mlp.gate_proj", "128", "64"}, {"mlp.up_proj", "128", "64"}, {"mlp.down_proj", "64", "128"}};
            for (String[] l : linears) {
                String prefix = "model.layers.0." + l[0];
                if (prefix.equals(skip)) {
                    continue;
                }
                int rows = Integer.parseInt(l[1]);
                int cols = Integer.parseInt(l[2]);
                switch (kind) {
                    case GPTQ -> GptqPacking.write(matrix(random, LatheFormat.intGroup(4, 32, true), rows, cols, arena), prefix, out);
                    case AWQ -> AwqPacking.write(matrix(random, LatheFormat.intGroup(4, 32, true), rows, cols, arena), prefix, out);
                    case NF4 -> Nf4Packing.write(matrix(random, LatheFormat.nf4(64), rows, cols, arena), prefix, out);
                    case NF4_DQ -> Nf4Packing.write(matrix(random, LatheFormat.nf4DoubleQuant(64), rows, cols, arena), prefix, out);
                }
            }
        }
        extra.accept(out);
        Files.createDirectories(dir);
        out.write(dir.resolve("model.safetensors"));
        ObjectNode c = config();
        c.set("quantization_config", switch (kind) {
            case GPTQ -> QuantizationConfig.gptq(4, 32, false, false, null);
            case AWQ -> QuantizationConfig.awq(32, null);
            case NF4 -> QuantizationConfig.bitsandbytesNf4(false, null);
            case NF4_DQ -> QuantizationConfig.bitsandbytesNf4(true, null);
        });
        tamperConfig.accept(c);
        JSON.writeValue(dir.resolve("config.json").toFile(), c);
        return dir;
    }

    private static void assertProblem(Path dir, String... words) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelReader.read(dir).close());
        for (String w : words) {
            assertTrue(e.getMessage().contains(w), "'" + w + "' in: " + e.getMessage());
        }
    }

    @Test
    void validDirectoriesOfEachPackingLoad(@TempDir Path dir) throws Exception {
        for (Kind kind : Kind.values()) {
            HfModelReader.read(write(dir.resolve(kind.name()), kind, out -> { }, c -> { }, null)).close();
        }
    }

    @Test
    void unsupportedConfigsNameTheFieldAndValue(@TempDir Path dir) throws Exception {
        assertProblem(write(dir.resolve("g3"), Kind.GPTQ, o -> { }, c -> ((ObjectNode) c.get("quantization_config")).put("bits", 3), null),
                "quantization_config.bits 3", "gptq");
        assertProblem(write(dir.resolve("g8"), Kind.GPTQ, o -> { }, c -> ((ObjectNode) c.get("quantization_config")).put("bits", 8), null),
                "quantization_config.bits 8");
        assertProblem(write(dir.resolve("v2"), Kind.GPTQ, o -> { },
                c -> ((ObjectNode) c.get("quantization_config")).put("checkpoint_format", "gptq_v2"), null),
                "quantization_config.checkpoint_format 'gptq_v2'");
        assertProblem(write(dir.resolve("gemv"), Kind.AWQ, o -> { }, c -> ((ObjectNode) c.get("quantization_config")).put("version", "gemv"), null),
                "quantization_config.version 'gemv'");
        assertProblem(write(dir.resolve("fp4"), Kind.NF4, o -> { },
                c -> ((ObjectNode) c.get("quantization_config")).put("bnb_4bit_quant_type", "fp4"), null),
                "quantization_config.bnb_4bit_quant_type 'fp4'");
        assertProblem(write(dir.resolve("int8"), Kind.NF4, o -> { },
                c -> ((ObjectNode) c.get("quantization_config")).put("load_in_8bit", true).put("load_in_4bit", false), null),
                "quantization_config.load_in_8bit");
        assertProblem(write(dir.resolve("eetq"), Kind.GPTQ, o -> { },
                c -> ((ObjectNode) c.get("quantization_config")).put("quant_method", "eetq"), null),
                "quantization_config.quant_method 'eetq'");
        assertProblem(write(dir.resolve("noconfig"), Kind.GPTQ, o -> { }, c -> c.remove("quantization_config"), null),
                "qweight", "quantization_config is absent");
    }

    @Test
    void mismatchedShapesNameTheTensor(@TempDir Path dir) throws Exception {
        String q = "model.layers.0.self_attn.q_proj";
        // scales with 3 groups for K = 64
        assertProblem(write(dir.resolve("scales"), Kind.GPTQ, out -> {
            out.addInt32(q + ".qweight", new long[] {8, 64}, new int[8 * 64]);
            out.addInt32(q + ".qzeros", new long[] {3, 8}, new int[3 * 8]);
            out.addFloat16(q + ".scales", new long[] {3, 64}, new float[3 * 64]);
        }, c -> { }, q), q, "3 groups do not divide K = 64");
        // qweight for the wrong K: a [64, 128] projection stored where [64, 64] belongs
        assertProblem(write(dir.resolve("qweight"), Kind.GPTQ, out -> {
            try (Arena arena = Arena.ofConfined()) {
                GptqPacking.write(matrix(new Random(1), LatheFormat.intGroup(4, 32, true), 64, 128, arena), q, out);
            }
        }, c -> { }, q), q + ".qweight", "expected [8, 64]");
        // qzeros missing
        assertProblem(write(dir.resolve("nozeros"), Kind.GPTQ, out -> {
            out.addInt32(q + ".qweight", new long[] {8, 64}, new int[8 * 64]);
            out.addFloat16(q + ".scales", new long[] {2, 64}, new float[2 * 64]);
        }, c -> { }, q), q + ".qzeros", "missing");
        // AWQ qzeros with the wrong group count
        assertProblem(write(dir.resolve("awqzeros"), Kind.AWQ, out -> {
            out.addInt32(q + ".qweight", new long[] {64, 8}, new int[64 * 8]);
            out.addInt32(q + ".qzeros", new long[] {1, 8}, new int[8]);
            out.addFloat16(q + ".scales", new long[] {2, 64}, new float[2 * 64]);
        }, c -> { }, q), q + ".qzeros", "expected [2, 8]");
        // an absurd shape: a qweight claiming 2^40 rows cannot be in the file, and is not allocated
        assertProblem(write(dir.resolve("absurd"), Kind.GPTQ, out -> {
            out.add(q + ".qweight", "I32", new long[] {1L << 40, 64}, new byte[64]);
        }, c -> { }, q), q + ".qweight");
        // NF4 absmax of the wrong length
        assertProblem(write(dir.resolve("absmax"), Kind.NF4, out -> {
            try (Arena arena = Arena.ofConfined()) {
                SafetensorsWriter tmp = new SafetensorsWriter();
                Nf4Packing.write(matrix(new Random(1), LatheFormat.nf4(64), 64, 64, arena), q, tmp);
            }
            out.add(q + ".weight", "U8", new long[] {2048, 1}, new byte[2048]);
            out.addFloat32(q + ".weight.absmax", new long[] {63}, new float[63]);
            out.addFloat32(q + ".weight.quant_map", new long[] {16}, dev.lathe.core.tensor.Nf4Codebook.values());
            byte[] state = "{\"quant_type\":\"nf4\",\"blocksize\":64,\"dtype\":\"float16\",\"shape\":[64,64]}".getBytes();
            out.add(q + ".weight.quant_state.bitsandbytes__nf4", "U8", new long[] {state.length}, state);
        }, c -> { }, q), q + ".weight.absmax", "expected [64]");
        // NF4 quant state for another shape, and fp4
        assertProblem(write(dir.resolve("state"), Kind.NF4, out -> {
            out.add(q + ".weight", "U8", new long[] {2048, 1}, new byte[2048]);
            out.addFloat32(q + ".weight.absmax", new long[] {64}, new float[64]);
            out.addFloat32(q + ".weight.quant_map", new long[] {16}, dev.lathe.core.tensor.Nf4Codebook.values());
            byte[] state = "{\"quant_type\":\"nf4\",\"blocksize\":64,\"dtype\":\"float16\",\"shape\":[128,32]}".getBytes();
            out.add(q + ".weight.quant_state.bitsandbytes__nf4", "U8", new long[] {state.length}, state);
        }, c -> { }, q), "quant_state shape is [128,32]", "expected [64, 64]");
        assertProblem(write(dir.resolve("fp4state"), Kind.NF4, out -> {
            byte[] state = "{\"quant_type\":\"fp4\",\"blocksize\":64,\"dtype\":\"float16\",\"shape\":[64,64]}".getBytes();
            out.add(q + ".weight", "U8", new long[] {2048, 1}, new byte[2048]);
            out.add(q + ".weight.quant_state.bitsandbytes__fp4", "U8", new long[] {state.length}, state);
        }, c -> { }, q), "bitsandbytes fp4 is not supported");
        // a part of a packed layer without its qweight
        assertProblem(write(dir.resolve("orphan"), Kind.GPTQ, out -> out.addInt32(q + ".g_idx", new long[] {64}, new int[64]),
                c -> { }, q), q + ".g_idx", "part of a quantized layer");
    }

    @Test
    void badGroupIndicesNameTheTensor(@TempDir Path dir) throws Exception {
        String q = "model.layers.0.self_attn.q_proj";
        int[] outOfRange = new int[64];
        outOfRange[5] = 7;
        assertProblem(write(dir.resolve("range"), Kind.GPTQ, out -> gptqWithGIdx(out, q, outOfRange), c -> { }, q),
                q + ".g_idx", "entry 5 is 7", "outside the 2 groups");
        int[] uneven = new int[64]; // 64 inputs in group 0, none in group 1
        assertProblem(write(dir.resolve("uneven"), Kind.GPTQ, out -> gptqWithGIdx(out, q, uneven), c -> { }, q),
                q + ".g_idx", "puts 64 inputs in group 0");
        int[] negative = new int[64];
        negative[0] = -1;
        assertProblem(write(dir.resolve("negative"), Kind.GPTQ, out -> gptqWithGIdx(out, q, negative), c -> { }, q),
                q + ".g_idx", "entry 0 is -1");
        int[] shuffled = new int[64]; // a valid act-order permutation: odd inputs group 1
        for (int k = 0; k < 64; k++) {
            shuffled[k] = k % 2;
        }
        Path ok = write(dir.resolve("shuffled"), Kind.GPTQ, out -> gptqWithGIdx(out, q, shuffled), c -> { }, q);
        try (var model = HfModelReader.read(ok)) {
            assertTrue(model.tensor("blk.0.attn_q.weight").format().name().endsWith("-actorder"),
                    model.tensor("blk.0.attn_q.weight").format().name());
        }
    }

    @Test
    void symmetricConfigWithOtherZeroPointsIsRefused(@TempDir Path dir) throws Exception {
        assertProblem(write(dir.resolve("sym"), Kind.GPTQ, o -> { }, c -> ((ObjectNode) c.get("quantization_config")).put("sym", true), null),
                "qzeros", "sym is true");
    }

    /** GPTQ tensors of a [64, 64] projection with the given g_idx (levels and grids arbitrary but valid). */
    private static void gptqWithGIdx(SafetensorsWriter out, String prefix, int[] gIdx) {
        int[] qweight = new int[8 * 64];
        int[] qzeros = new int[2 * 8];
        java.util.Arrays.fill(qzeros, 0x77777777);
        float[] scales = new float[2 * 64];
        java.util.Arrays.fill(scales, 0.01f);
        out.addInt32(prefix + ".qweight", new long[] {8, 64}, qweight);
        out.addInt32(prefix + ".qzeros", new long[] {2, 8}, qzeros);
        out.addFloat16(prefix + ".scales", new long[] {2, 64}, scales);
        out.addInt32(prefix + ".g_idx", new long[] {64}, gIdx);
    }

    @Test
    void exportRefusesWhatItCannotHold() {
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix int8 = matrix(new Random(1), LatheFormat.int8Channel(), 8, 64, arena);
            assertThrows(IllegalArgumentException.class, () -> GptqPacking.write(int8, "p", new SafetensorsWriter()));
            assertThrows(IllegalArgumentException.class, () -> AwqPacking.write(int8, "p", new SafetensorsWriter()));
            assertTrue(!GptqPacking.fits(matrix(new Random(1), LatheFormat.intGroup(4, 32, true), 12, 64, arena)), "12 rows do not pack");
            assertTrue(!AwqPacking.fits(WeightMatrices.of("f", GgmlType.F32, 8, 8, arena.allocate(256))), "F32 is not AWQ");
        }
    }
}
