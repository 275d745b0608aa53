package dev.lathe.tools.prune;

import dev.lathe.core.gguf.GgufFile;
import dev.lathe.core.gguf.GgufModelReader;
import dev.lathe.core.gguf.GgufTensorInfo;
import dev.lathe.core.gguf.GgufValue;
import dev.lathe.core.gguf.GgufWriter;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.tools.quant.AtomicOutput;
import dev.lathe.tools.quant.GgmlQuantizer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * Writes a pruned model as an ordinary GGUF file: the input's metadata (minus what the caller
 * overrides), and each tensor either copied as it is or replaced by new values in a chosen format.
 * Lathe formats are described by {@code lathe.tensor_format.NAME} / {@code lathe.tensor_cols.NAME}
 * as {@code lathe quantize} writes them.
 */
final class PrunedModelWriter {
    private final Arena arena;
    private final GgufWriter writer = new GgufWriter();

    /** Copies {@code gguf}'s metadata except {@code general.file_type}, Lathe's per-tensor keys and {@code overridden}. */
    PrunedModelWriter(GgufFile gguf, Arena arena, Set<String> overridden) {
        this.arena = arena;
        for (Map.Entry<String, GgufValue> e : gguf.metadata().asMap().entrySet()) {
            String key = e.getKey();
            if (key.equals("general.file_type") || key.startsWith(GgufModelReader.LATHE_FORMAT_KEY)
                    || key.startsWith(GgufModelReader.LATHE_COLS_KEY) || overridden.contains(key)) {
                continue;
            }
            writer.put(key, e.getValue());
        }
    }

    GgufWriter metadata() {
        return writer;
    }

    /** Copies tensor {@code info} as it is, under {@code newName}. */
    void copy(GgufTensorInfo info, WeightMatrix w, String newName) {
        if (w.format() instanceof LatheFormat lathe) {
            describe(newName, lathe, w.cols());
        }
        long[] dims = info.dims();
        long[] shape = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            shape[i] = dims[dims.length - 1 - i];
        }
        writer.addTensor(newName, info.type(), shape, out -> out.copyFrom(w.data()));
    }

    /**
     * The format new values of a tensor now stored as {@code source} are written in: the same one
     * when Lathe can write it, else F32 (e.g. a Q5_K input).
     */
    static WeightFormat writableLike(WeightFormat source, int cols) {
        return switch (source) {
            case GgmlType t -> GgmlQuantizer.canWrite(t) && cols % t.blockSize == 0 ? t : GgmlType.F32;
            case LatheFormat l -> !l.isSparse24() && l.fitsRow(cols) ? l : GgmlType.F32;
        };
    }

    /** Writes {@code values [rows, cols]} as {@code format} (RTN for quantized formats); {@code vector} writes a 1-D tensor. */
    void put(String name, float[] values, int rows, int cols, WeightFormat format, boolean vector) {
        MemorySegment data = switch (format) {
            case GgmlType t -> GgmlQuantizer.quantize(t, values, rows, cols, arena);
            case LatheFormat l -> LatheEncoder.encode(l, values, rows, cols, arena);
        };
        putEncoded(name, data, rows, cols, format, vector);
    }

    /** Writes already encoded {@code data} of a {@code [rows, cols]} tensor in {@code format}. */
    void putEncoded(String name, MemorySegment data, int rows, int cols, WeightFormat format, boolean vector) {
        switch (format) {
            case GgmlType t -> writer.addTensor(name, t, vector ? new long[] {cols} : new long[] {rows, cols}, out -> out.copyFrom(data));
            case LatheFormat l -> {
                describe(name, l, cols);
                writer.addTensor(name, GgmlType.I8, new long[] {l.storedRows(rows, cols), l.rowBytes(cols)}, out -> out.copyFrom(data));
            }
        }
    }

    private void describe(String name, LatheFormat format, int cols) {
        writer.putString(GgufModelReader.LATHE_FORMAT_KEY + name, format.spec());
        writer.putUint32(GgufModelReader.LATHE_COLS_KEY + name, cols);
    }

    /** Writes the file atomically (see {@link AtomicOutput}). */
    void write(Path output, boolean force) {
        AtomicOutput.write(output, force, writer::write);
    }
}
