package dev.lathe.core.format;

import dev.lathe.core.gguf.GgufWriter;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightEncoder;
import dev.lathe.core.tokenizer.Vocabulary;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A Llama-shaped model with random weights, written as GGUF: for the demo (no download needed),
 * benchmarks of realistic shapes, and tests. Its text is meaningless; its shapes, formats and
 * speed are real. The vocabulary is SentencePiece-style: {@code <unk> <s> </s>}, the 256 byte
 * tokens, then made-up pieces.
 *
 * @param dim     model width
 * @param layers  decoder blocks
 * @param heads   query heads
 * @param kvHeads key/value heads
 * @param ffnDim  SwiGLU hidden width
 * @param vocab   vocabulary size (at least 259)
 * @param context context length
 * @param type    storage type of the matrices (norms stay F32)
 * @param seed    weights are a function of the seed
 */
public record SyntheticModel(int dim, int layers, int heads, int kvHeads, int ffnDim, int vocab, int context,
                             GgmlType type, long seed) {

    private static final int BYTE_TOKENS = 256;
    private static final int FIRST_PIECE = 3 + BYTE_TOKENS;

    /** A small model that generates quickly anywhere: about 3M parameters. */
    public static SyntheticModel small(GgmlType type) {
        return new SyntheticModel(256, 4, 8, 4, 768, 2048, 1024, type, 42);
    }

    /** The issue's ~200M-parameter benchmark shape: dim 1024, 12 layers, 16 heads, 4 KV heads, FFN 2816, vocab 32000. */
    public static SyntheticModel bench200M(GgmlType type) {
        return new SyntheticModel(1024, 12, 16, 4, 2816, 32000, 2048, type, 42);
    }

    public long parameterCount() {
        long headDim = dim / heads;
        long perLayer = 2L * dim + (long) dim * heads * headDim * 2 + 2L * dim * kvHeads * headDim + 3L * dim * ffnDim;
        return 2L * vocab * dim + dim + layers * perLayer;
    }

    public void write(Path path) {
        if (vocab < FIRST_PIECE) {
            throw new IllegalArgumentException("vocab must be at least " + FIRST_PIECE + " (control and byte tokens)");
        }
        int headDim = dim / heads;
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", "llama");
        w.putString("general.name", "lathe-synthetic-" + parameterCount() / 1_000_000 + "M-" + type);
        w.putString("general.description", "random weights made by Lathe for demos and benchmarks; its text is meaningless");
        w.putUint32("general.quantization_version", 2);
        w.putUint32("llama.context_length", context);
        w.putUint32("llama.embedding_length", dim);
        w.putUint32("llama.block_count", layers);
        w.putUint32("llama.feed_forward_length", ffnDim);
        w.putUint32("llama.attention.head_count", heads);
        w.putUint32("llama.attention.head_count_kv", kvHeads);
        w.putUint32("llama.rope.dimension_count", headDim);
        w.putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.putFloat32("llama.rope.freq_base", 10000f);
        writeVocabulary(w);

        SplittableRandom seeds = new SplittableRandom(seed);
        matrix(w, "token_embd.weight", vocab, dim, 1.0f, seeds.nextLong());
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            ones(w, p + "attn_norm.weight", dim);
            float attnStd = (float) (1 / Math.sqrt(dim));
            matrix(w, p + "attn_q.weight", heads * headDim, dim, attnStd, seeds.nextLong());
            matrix(w, p + "attn_k.weight", kvHeads * headDim, dim, attnStd, seeds.nextLong());
            matrix(w, p + "attn_v.weight", kvHeads * headDim, dim, attnStd, seeds.nextLong());
            matrix(w, p + "attn_output.weight", dim, heads * headDim, attnStd, seeds.nextLong());
            ones(w, p + "ffn_norm.weight", dim);
            matrix(w, p + "ffn_gate.weight", ffnDim, dim, attnStd, seeds.nextLong());
            matrix(w, p + "ffn_up.weight", ffnDim, dim, attnStd, seeds.nextLong());
            matrix(w, p + "ffn_down.weight", dim, ffnDim, (float) (1 / Math.sqrt(ffnDim)), seeds.nextLong());
        }
        ones(w, "output_norm.weight", dim);
        matrix(w, "output.weight", vocab, dim, (float) (1 / Math.sqrt(dim)), seeds.nextLong());
        w.write(path);
    }

    private void matrix(GgufWriter w, String name, int rows, int cols, float std, long tensorSeed) {
        w.addTensor(name, type, new long[] {rows, cols}, out -> {
            SplittableRandom random = new SplittableRandom(tensorSeed);
            float[] row = new float[cols];
            long rowBytes = type.bytesFor(cols, name);
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < cols; i++) {
                    row[i] = (float) (random.nextGaussian() * std);
                }
                WeightEncoder.encodeRow(type, row, 0, cols, out, r * rowBytes);
            }
        });
    }

    private static void ones(GgufWriter w, String name, int n) {
        float[] values = new float[n];
        java.util.Arrays.fill(values, 1f);
        w.addTensor(name, GgmlType.F32, new long[] {n}, out -> WeightEncoder.encodeRow(GgmlType.F32, values, 0, n, out, 0));
    }

    private void writeVocabulary(GgufWriter w) {
        List<String> tokens = new ArrayList<>(vocab);
        float[] scores = new float[vocab];
        int[] types = new int[vocab];
        tokens.add("<unk>");
        tokens.add("<s>");
        tokens.add("</s>");
        types[0] = Vocabulary.TYPE_UNKNOWN;
        types[1] = Vocabulary.TYPE_CONTROL;
        types[2] = Vocabulary.TYPE_CONTROL;
        for (int b = 0; b < BYTE_TOKENS; b++) {
            tokens.add(String.format("<0x%02X>", b));
            types[3 + b] = Vocabulary.TYPE_BYTE;
        }
        // Made-up pieces: "▁a", "a", "▁b", ... then two letters, three letters, ...
        String letters = "etaoinshrdlucmfwypvbgkjqxz";
        for (int length = 1; tokens.size() < vocab; length++) {
            int[] digits = new int[length];
            do {
                StringBuilder piece = new StringBuilder();
                for (int d : digits) {
                    piece.append(letters.charAt(d));
                }
                for (String candidate : new String[] {"\u2581" + piece, piece.toString()}) {
                    if (tokens.size() < vocab) {
                        scores[tokens.size()] = -tokens.size();
                        types[tokens.size()] = Vocabulary.TYPE_NORMAL;
                        tokens.add(candidate);
                    }
                }
            } while (increment(digits, letters.length()) && tokens.size() < vocab);
        }
        w.putString("tokenizer.ggml.model", "llama");
        w.putString("tokenizer.ggml.pre", "default");
        w.putStringArray("tokenizer.ggml.tokens", tokens);
        w.putFloat32Array("tokenizer.ggml.scores", scores);
        w.putInt32Array("tokenizer.ggml.token_type", types);
        w.putUint32("tokenizer.ggml.unknown_token_id", 0);
        w.putUint32("tokenizer.ggml.bos_token_id", 1);
        w.putUint32("tokenizer.ggml.eos_token_id", 2);
        w.putBool("tokenizer.ggml.add_bos_token", true);
    }

    /** Next combination of {@code digits} in base {@code radix}; false after the last one. */
    private static boolean increment(int[] digits, int radix) {
        for (int i = digits.length - 1; i >= 0; i--) {
            if (++digits[i] < radix) {
                return true;
            }
            digits[i] = 0;
        }
        return false;
    }
}
