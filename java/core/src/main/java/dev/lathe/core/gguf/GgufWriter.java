package dev.lathe.core.gguf;

import dev.lathe.core.tensor.GgmlType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * Writes GGUF v3 files that llama.cpp reads: metadata in insertion order, tensor infos, then each
 * tensor's data at an offset aligned to {@code general.alignment} (32 unless set).
 *
 * <pre>{@code
 * GgufWriter w = new GgufWriter();
 * w.putString("general.architecture", "llama");
 * w.addTensor("token_embd.weight", GgmlType.F32, new long[] {vocab, dim}, out -> ...fill out...);
 * w.write(path);
 * }</pre>
 */
public final class GgufWriter {

    /** Fills a tensor's bytes; {@code out} is exactly the tensor's byte size. */
    @FunctionalInterface
    public interface TensorData {
        void fill(MemorySegment out);
    }

    private record PendingTensor(String name, GgmlType type, long[] ggmlDims, long byteSize, TensorData data) {
    }

    private final SequencedMap<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<PendingTensor> tensors = new ArrayList<>();

    public GgufWriter put(String key, GgufValue value) {
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putString(String key, String value) {
        return put(key, GgufValue.of(GgufValueType.STRING, value));
    }

    public GgufWriter putUint32(String key, long value) {
        if (value < 0 || value > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException(key + ": " + value + " does not fit in uint32");
        }
        return put(key, GgufValue.of(GgufValueType.UINT32, value));
    }

    public GgufWriter putInt32(String key, int value) {
        return put(key, GgufValue.of(GgufValueType.INT32, (long) value));
    }

    public GgufWriter putFloat32(String key, float value) {
        return put(key, GgufValue.of(GgufValueType.FLOAT32, value));
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufValue.of(GgufValueType.BOOL, value));
    }

    public GgufWriter putStringArray(String key, List<String> values) {
        return put(key, GgufValue.array(GgufValueType.STRING, List.copyOf(values)));
    }

    public GgufWriter putFloat32Array(String key, float[] values) {
        return put(key, GgufValue.array(GgufValueType.FLOAT32, values.clone()));
    }

    public GgufWriter putInt32Array(String key, int[] values) {
        long[] longs = new long[values.length];
        for (int i = 0; i < values.length; i++) {
            longs[i] = values[i];
        }
        return put(key, GgufValue.array(GgufValueType.INT32, longs));
    }

    /**
     * Adds a tensor of row-major {@code shape} (outermost first, e.g. {@code {rows, cols}}); the
     * innermost length must be a whole number of {@code type}'s blocks.
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] shape, TensorData data) {
        if (shape.length < 1 || shape.length > GgufFile.MAX_DIMS) {
            throw new IllegalArgumentException(name + ": " + shape.length + " dimensions; GGUF allows 1 to " + GgufFile.MAX_DIMS);
        }
        long[] ggmlDims = new long[shape.length];
        long rows = 1;
        for (int i = 0; i < shape.length; i++) {
            ggmlDims[i] = shape[shape.length - 1 - i];
            if (i > 0) {
                rows = Math.multiplyExact(rows, ggmlDims[i]);
            }
        }
        long byteSize = Math.multiplyExact(type.bytesFor(ggmlDims[0], name), rows);
        tensors.add(new PendingTensor(name, type, ggmlDims, byteSize, data));
        return this;
    }

    public void write(Path path) {
        int alignment = alignment();
        ByteArrayOutputStream header = new ByteArrayOutputStream();
        writeI32(header, GgufFile.MAGIC);
        writeI32(header, 3);
        writeI64(header, tensors.size());
        writeI64(header, metadata.size());
        metadata.forEach((key, value) -> {
            writeString(header, key);
            writeI32(header, value.type().id());
            writeValue(header, value);
        });
        long offset = 0;
        for (PendingTensor t : tensors) {
            writeString(header, t.name());
            writeI32(header, t.ggmlDims().length);
            for (long d : t.ggmlDims()) {
                writeI64(header, d);
            }
            writeI32(header, t.type().id);
            writeI64(header, offset);
            offset = GgufFile.alignUp(offset + t.byteSize(), alignment);
        }
        try (FileChannel out = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            byte[] headerBytes = header.toByteArray();
            writeFully(out, ByteBuffer.wrap(headerBytes));
            writePadding(out, GgufFile.alignUp(headerBytes.length, alignment) - headerBytes.length);
            for (PendingTensor t : tensors) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment bytes = arena.allocate(t.byteSize(), 64);
                    t.data().fill(bytes);
                    writeFully(out, bytes.asByteBuffer());
                }
                writePadding(out, GgufFile.alignUp(t.byteSize(), alignment) - t.byteSize());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + path, e);
        }
    }

    private int alignment() {
        GgufValue v = metadata.get("general.alignment");
        return v == null ? GgufFile.DEFAULT_ALIGNMENT : (int) (long) (Long) v.value();
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }

    private static void writePadding(FileChannel out, long count) throws IOException {
        writeFully(out, ByteBuffer.allocate((int) count));
    }

    private static void writeValue(ByteArrayOutputStream out, GgufValue v) {
        if (v.type() == GgufValueType.ARRAY) {
            writeArray(out, v);
        } else {
            writeScalar(out, v.type(), v.value());
        }
    }

    private static void writeArray(ByteArrayOutputStream out, GgufValue v) {
        writeI32(out, v.elementType().id());
        writeI64(out, v.length());
        switch (v.value()) {
            case long[] a -> {
                for (long x : a) {
                    writeScalar(out, v.elementType(), x);
                }
            }
            case float[] a -> {
                for (float x : a) {
                    writeI32(out, Float.floatToRawIntBits(x));
                }
            }
            case double[] a -> {
                for (double x : a) {
                    writeI64(out, Double.doubleToRawLongBits(x));
                }
            }
            case boolean[] a -> {
                for (boolean x : a) {
                    out.write(x ? 1 : 0);
                }
            }
            case List<?> list -> {
                for (Object x : list) {
                    if (x instanceof GgufValue nested) {
                        writeArray(out, nested);
                    } else {
                        writeString(out, (String) x);
                    }
                }
            }
            default -> throw new IllegalArgumentException("unexpected array storage " + v.value().getClass());
        }
    }

    private static void writeScalar(ByteArrayOutputStream out, GgufValueType type, Object value) {
        switch (type) {
            case UINT8, INT8 -> out.write((int) (long) (Long) value);
            case UINT16, INT16 -> {
                long x = (Long) value;
                out.write((int) x);
                out.write((int) (x >> 8));
            }
            case UINT32, INT32 -> writeI32(out, (int) (long) (Long) value);
            case UINT64, INT64 -> writeI64(out, (Long) value);
            case FLOAT32 -> writeI32(out, Float.floatToRawIntBits((Float) value));
            case FLOAT64 -> writeI64(out, Double.doubleToRawLongBits((Double) value));
            case BOOL -> out.write((Boolean) value ? 1 : 0);
            case STRING -> writeString(out, (String) value);
            case ARRAY -> throw new IllegalArgumentException("arrays are written by writeArray");
        }
    }

    private static void writeString(ByteArrayOutputStream out, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        writeI64(out, bytes.length);
        out.writeBytes(bytes);
    }

    private static void writeI32(ByteArrayOutputStream out, int v) {
        out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
    }

    private static void writeI64(ByteArrayOutputStream out, long v) {
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }
}
