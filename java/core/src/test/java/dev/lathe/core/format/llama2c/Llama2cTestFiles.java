package dev.lathe.core.format.llama2c;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes small llama2.c files the way export.py does (legacy_export and version2_export), written
 * from export.py's order independently of the reader's Llama2cLayout. Every tensor is filled by a
 * caller-supplied function, so a test can tell tensors apart by their values.
 */
final class Llama2cTestFiles {
    private Llama2cTestFiles() {
    }

    /** The seven header ints and the classifier flag. */
    record Dims(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen, boolean shared) {
        int kvDim() {
            return kvHeads * (dim / heads);
        }
    }

    /**
     * One tensor as export.py writes it.
     *
     * @param gguf the GGUF name the reader should give it, or null for the skipped freq_cis tables
     */
    record Tensor(String gguf, int rows, int cols, float[] values) {
    }

    interface Filler {
        float[] fill(String gguf, int rows, int cols);
    }

    /** legacy_export's order: embedding, then each kind of weight for all layers, final norm, freq_cis, classifier. */
    static List<Tensor> legacyOrder(Dims d, Filler f) {
        List<Tensor> out = new ArrayList<>();
        add(out, f, "token_embd.weight", d.vocab, d.dim);
        layers(out, f, d, "attn_norm.weight", 1, d.dim);
        layers(out, f, d, "attn_q.weight", d.dim, d.dim);
        layers(out, f, d, "attn_k.weight", d.kvDim(), d.dim);
        layers(out, f, d, "attn_v.weight", d.kvDim(), d.dim);
        layers(out, f, d, "attn_output.weight", d.dim, d.dim);
        layers(out, f, d, "ffn_norm.weight", 1, d.dim);
        layers(out, f, d, "ffn_gate.weight", d.hidden, d.dim); // w1
        layers(out, f, d, "ffn_down.weight", d.dim, d.hidden); // w2
        layers(out, f, d, "ffn_up.weight", d.hidden, d.dim);   // w3
        add(out, f, "output_norm.weight", 1, d.dim);
        int half = d.dim / d.heads / 2;
        out.add(new Tensor(null, d.seqLen, half, new float[d.seqLen * half]));
        out.add(new Tensor(null, d.seqLen, half, new float[d.seqLen * half]));
        if (!d.shared) {
            add(out, f, "output.weight", d.vocab, d.dim);
        }
        return out;
    }

    static Path writeLegacy(Path file, Dims d, List<Tensor> tensors) throws IOException {
        long floats = tensors.stream().mapToLong(t -> t.values.length).sum();
        ByteBuffer b = buffer(28 + 4 * floats);
        b.putInt(d.dim).putInt(d.hidden).putInt(d.layers).putInt(d.heads).putInt(d.kvHeads)
                .putInt(d.shared ? d.vocab : -d.vocab).putInt(d.seqLen);
        for (Tensor t : tensors) {
            for (float v : t.values) {
                b.putFloat(v);
            }
        }
        return write(file, b);
    }

    /** version2_export: norms (attention, FFN, final) then each matrix quantized, int8 values then f32 scales. */
    static Path writeVersion2(Path file, Dims d, int groupSize, Filler f) throws IOException {
        List<Tensor> norms = new ArrayList<>();
        layers(norms, f, d, "attn_norm.weight", 1, d.dim);
        layers(norms, f, d, "ffn_norm.weight", 1, d.dim);
        add(norms, f, "output_norm.weight", 1, d.dim);
        List<Tensor> matrices = new ArrayList<>();
        add(matrices, f, "token_embd.weight", d.vocab, d.dim);
        layers(matrices, f, d, "attn_q.weight", d.dim, d.dim);
        layers(matrices, f, d, "attn_k.weight", d.kvDim(), d.dim);
        layers(matrices, f, d, "attn_v.weight", d.kvDim(), d.dim);
        layers(matrices, f, d, "attn_output.weight", d.dim, d.dim);
        layers(matrices, f, d, "ffn_gate.weight", d.hidden, d.dim);
        layers(matrices, f, d, "ffn_down.weight", d.dim, d.hidden);
        layers(matrices, f, d, "ffn_up.weight", d.hidden, d.dim);
        if (!d.shared) {
            add(matrices, f, "output.weight", d.vocab, d.dim);
        }
        long bytes = 256;
        for (Tensor t : norms) {
            bytes += 4L * t.values.length;
        }
        for (Tensor t : matrices) {
            bytes += t.values.length + 4L * (t.values.length / groupSize);
        }
        ByteBuffer b = buffer(bytes);
        b.putInt(Llama2cQuantizedReader.MAGIC).putInt(2);
        b.putInt(d.dim).putInt(d.hidden).putInt(d.layers).putInt(d.heads).putInt(d.kvHeads).putInt(d.vocab).putInt(d.seqLen);
        b.put((byte) (d.shared ? 1 : 0)).putInt(groupSize);
        b.position(256);
        for (Tensor t : norms) {
            for (float v : t.values) {
                b.putFloat(v);
            }
        }
        for (Tensor t : matrices) {
            float[] scales = new float[t.values.length / groupSize];
            for (int g = 0; g < scales.length; g++) {
                float max = 0;
                for (int i = 0; i < groupSize; i++) {
                    max = Math.max(max, Math.abs(t.values[g * groupSize + i]));
                }
                scales[g] = max / 127f;
            }
            for (int i = 0; i < t.values.length; i++) {
                float scale = scales[i / groupSize];
                b.put((byte) (scale == 0 ? 0 : Math.round(t.values[i] / scale)));
            }
            for (float s : scales) {
                b.putFloat(s);
            }
        }
        return write(file, b);
    }

    private static void layers(List<Tensor> out, Filler f, Dims d, String suffix, int rows, int cols) {
        for (int layer = 0; layer < d.layers; layer++) {
            add(out, f, "blk." + layer + "." + suffix, rows, cols);
        }
    }

    private static void add(List<Tensor> out, Filler f, String gguf, int rows, int cols) {
        out.add(new Tensor(gguf, rows, cols, f.fill(gguf, rows, cols)));
    }

    private static ByteBuffer buffer(long bytes) {
        return ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static Path write(Path file, ByteBuffer b) throws IOException {
        Files.write(file, b.array());
        return file;
    }

    /** A copy of the first {@code bytes} bytes of {@code source}. */
    static Path truncatedCopy(Path source, Path target, long bytes) throws IOException {
        byte[] all = Files.readAllBytes(source);
        Files.write(target, java.util.Arrays.copyOf(all, Math.toIntExact(bytes)));
        return target;
    }

    /** A copy of {@code source} with the int32 at {@code offset} replaced. */
    static Path patchedCopy(Path source, Path target, int offset, int value) throws IOException {
        byte[] all = Files.readAllBytes(source);
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putInt(offset, value);
        Files.write(target, all);
        return target;
    }
}
