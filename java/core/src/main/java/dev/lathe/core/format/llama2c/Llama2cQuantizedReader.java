package dev.lathe.core.format.llama2c;

import dev.lathe.core.format.LlamaTensorShapes;
import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.io.MappedFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * Reads a llama2.c "version 2" int8 export (export.py {@code --version 2}, runq.c), e.g.
 * stories260K_q80.bin. A 256-byte header: uint32 magic "ak42", int32 version 2, the seven int32
 * hyper-parameters, uint8 shared_classifier, int32 group_size, zero padding. Then the norms as f32
 * (all attention norms, all FFN norms, the final norm), then each matrix in
 * {@link Llama2cLayout#quantizedMatrices} order as its int8 values followed by its f32 group scales.
 *
 * <p>The norms stay in the mapped file; the matrices are converted once into the model's arena, to
 * Q8_0 where that keeps every int8 value and to f32 otherwise (see {@link GroupQ8Tensor}).
 */
public final class Llama2cQuantizedReader {
    /** "ak42" as the little-endian uint32 export.py writes. */
    public static final int MAGIC = 0x616b3432;
    public static final int VERSION = 2;
    public static final int HEADER_BYTES = 256;

    private Llama2cQuantizedReader() {
    }

    public static LoadedModel read(Path path) {
        Arena arena = Arena.ofShared();
        try {
            return read(MappedFile.map(path, arena), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static LoadedModel read(MappedFile file, Arena arena) {
        String source = file.source();
        int magic = file.int32(0, "magic");
        if (magic != MAGIC) {
            throw new ModelFormatException(source, String.format(
                    "magic 0x%08x is not llama2.c's 0x%08x (\"ak42\")", magic, MAGIC));
        }
        int version = file.int32(4, "version");
        if (version != VERSION) {
            throw new ModelFormatException(source, "llama2.c export version " + version
                    + " is not supported; Lathe reads version " + VERSION + " (int8) and the legacy fp32 checkpoint");
        }
        boolean shared = switch (file.uint8(36, "shared_classifier")) {
            case 0 -> false;
            case 1 -> true;
            default -> throw new ModelFormatException(source,
                    "shared_classifier flag " + file.uint8(36, "shared_classifier") + " is neither 0 nor 1");
        };
        Llama2cHeader header = Llama2cHeader.read(file, 8, false, shared);
        int groupSize = file.int32(37, "group_size");
        LlamaConfig config = header.toConfig(source);
        List<Llama2cLayout.Entry> norms = Llama2cLayout.quantizedNorms(config);
        List<Llama2cLayout.Entry> matrices = Llama2cLayout.quantizedMatrices(config);
        checkGroupSize(source, groupSize, matrices);
        long expected = expectedSize(norms, matrices, groupSize);
        if (file.size() != expected) {
            throw new ModelFormatException(source, "the header " + header + " with group_size " + groupSize
                    + " implies " + expected + " bytes but the file has " + file.size());
        }

        SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
        long offset = HEADER_BYTES;
        for (Llama2cLayout.Entry norm : norms) {
            long bytes = norm.elements() * 4;
            tensors.put(norm.name(), WeightMatrices.of(norm.name(), GgmlType.F32, norm.rows(), norm.cols(),
                    file.slice(offset, bytes, norm.name())));
            offset += bytes;
        }
        int asQ8 = 0;
        int asF32 = 0;
        for (Llama2cLayout.Entry matrix : matrices) {
            long n = matrix.elements();
            long scaleBytes = n / groupSize * 4;
            GroupQ8Tensor quantized = new GroupQ8Tensor(matrix.name(), matrix.rows(), matrix.cols(), groupSize,
                    file.slice(offset, n, matrix.name() + " int8 values"),
                    file.slice(offset + n, scaleBytes, matrix.name() + " scales"));
            offset += n + scaleBytes;
            WeightMatrix converted;
            if (quantized.fitsQ8_0()) {
                MemorySegment blocks = quantized.toQ8_0(arena);
                converted = WeightMatrices.of(matrix.name(), GgmlType.Q8_0, matrix.rows(), matrix.cols(), blocks);
                asQ8++;
            } else {
                MemorySegment values = quantized.toF32(arena);
                converted = WeightMatrices.of(matrix.name(), GgmlType.F32, matrix.rows(), matrix.cols(), values);
                asF32++;
            }
            tensors.put(matrix.name(), converted);
        }
        // The file stores the norms first; list the tensors in model order, as the other formats do.
        SequencedMap<String, WeightMatrix> ordered = new LinkedHashMap<>();
        for (String name : LlamaTensorShapes.required(config).keySet()) {
            ordered.put(name, tensors.get(name));
        }

        String format = "llama2.c v2 (int8, group " + groupSize + ")";
        SequencedMap<String, Object> metadata = Llama2cCheckpointReader.metadata(header, format);
        metadata.put("llama2c.version", version);
        metadata.put("llama2c.group_size", groupSize);
        metadata.put("lathe.matrices_as_q8_0", asQ8);
        metadata.put("lathe.matrices_as_f32", asF32);
        // NOTE: llama2.c keeps the tokenizer in a separate tokenizer.bin, which TokenizerLoader.forModel takes
        // as its override; the model file has no vocabulary.
        return new LoadedModel(source, format, config, ordered, null, metadata, arena);
    }

    /**
     * export.py halves the group until it divides dim, so any positive group is possible (stories260K
     * has 4); each matrix must still be a whole number of groups.
     */
    // NOTE: a group that is not a multiple of 32 is accepted rather than refused: the reference
    // stories260K_q80.bin has group 4. Its matrices load as exact f32 (4x their int8 bytes), not Q8_0.
    private static void checkGroupSize(String source, int groupSize, List<Llama2cLayout.Entry> matrices) {
        if (groupSize <= 0) {
            throw new ModelFormatException(source, "group_size " + groupSize + " is not positive");
        }
        for (Llama2cLayout.Entry matrix : matrices) {
            if (matrix.elements() % groupSize != 0) {
                throw new ModelFormatException(source, matrix.name() + " has " + matrix.elements()
                        + " values, not a whole number of groups of " + groupSize);
            }
        }
    }

    private static long expectedSize(List<Llama2cLayout.Entry> norms, List<Llama2cLayout.Entry> matrices, int groupSize) {
        long total = HEADER_BYTES;
        for (Llama2cLayout.Entry norm : norms) {
            total = Math.addExact(total, Math.multiplyExact(norm.elements(), 4L));
        }
        for (Llama2cLayout.Entry matrix : matrices) {
            long n = matrix.elements();
            total = Math.addExact(total, Math.addExact(n, Math.multiplyExact(n / groupSize, 4L)));
        }
        return total;
    }
}
