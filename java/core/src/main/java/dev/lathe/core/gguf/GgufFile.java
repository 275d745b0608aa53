package dev.lathe.core.gguf;

import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.GgmlType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * A GGUF file (versions 2 and 3), memory-mapped. Reads the header, metadata and tensor infos;
 * tensor data stays in the mapping and is handed out as slices.
 *
 * <p>Every count and size in the header is untrusted: each is checked against the bytes left in
 * the file before anything is allocated, and every tensor's extent against the file's size, so
 * a truncated or hostile file ends in a {@link ModelFormatException}, never an OOM or a crash.
 */
public final class GgufFile implements AutoCloseable {
    public static final int MAGIC = 0x46554747; // "GGUF" little-endian
    public static final int DEFAULT_ALIGNMENT = 32;
    static final int MAX_DIMS = 4;             // GGML_MAX_DIMS
    private static final int MAX_ARRAY_NESTING = 4;
    // NOTE: caps on what a header may declare, far above any real model (the largest vocabularies
    // are ~262k tokens, ~500k merges; the longest strings are chat templates of a few KB). With
    // them, no header value can make the reader allocate more than a few hundred MB of heap, even
    // where the file's size alone would allow it (an 8-byte long per 1-byte UINT8 element).
    static final int MAX_ENTRIES = 1 << 22;
    static final int MAX_STRING_BYTES = 1 << 24;

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String source;
    private final Arena arena;
    private final boolean ownsArena;
    private final MemorySegment file;
    private final int version;
    private final GgufMetadata metadata;
    private final SequencedMap<String, GgufTensorInfo> tensors;
    private final int alignment;
    private final long dataStart;

    private long pos; // parse cursor

    private GgufFile(String source, Arena arena, boolean ownsArena, MemorySegment file) {
        this.source = source;
        this.arena = arena;
        this.ownsArena = ownsArena;
        this.file = file;

        if (file.byteSize() < 24) {
            throw error("file is " + file.byteSize() + " bytes, too short for a GGUF header (24 bytes)");
        }
        int magic = readI32();
        if (magic != MAGIC) {
            throw error(String.format("not a GGUF file: magic is 0x%08x, expected 0x%08x (\"GGUF\")", magic, MAGIC));
        }
        version = readI32();
        if (version != 2 && version != 3) {
            String hint = Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3
                    ? " (this looks like a big-endian GGUF; Lathe reads little-endian files)" : "";
            throw error("unsupported GGUF version " + version + "; Lathe reads versions 2 and 3" + hint);
        }
        long tensorCount = readI64();
        long kvCount = readI64();
        // Each metadata entry takes at least a key length, a type and one byte; each tensor info
        // at least a name length, n_dims, one dim, a type and an offset.
        checkCount("metadata entry count", kvCount, 8 + 4 + 1);
        checkCount("tensor count", tensorCount, 8 + 4 + 8 + 4 + 8);

        SequencedMap<String, GgufValue> kv = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = readString("metadata key #" + i);
            int typeId = readI32();
            GgufValueType type = GgufValueType.byId(typeId);
            if (type == null) {
                throw error("metadata " + key + " has unknown value type " + typeId);
            }
            if (kv.put(key, readValue(key, type, 0)) != null) {
                throw error("metadata key " + key + " appears twice");
            }
        }
        metadata = new GgufMetadata(source, kv);
        alignment = readAlignment();

        List<long[]> dimsList = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<GgmlType> types = new ArrayList<>();
        List<Long> offsets = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = readString("tensor name #" + i);
            int nDims = readI32();
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw error("tensor " + name + " has " + nDims + " dimensions; expected 1 to " + MAX_DIMS);
            }
            long[] dims = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                dims[d] = readI64();
            }
            GgmlType type = GgmlType.byId(readI32(), source + " tensor " + name);
            long offset = readI64();
            names.add(name);
            dimsList.add(dims);
            types.add(type);
            offsets.add(offset);
        }
        dataStart = alignUp(pos, alignment);
        // NOTE: vocabulary-only files (no tensors) may end right after the header, unpadded.
        if (tensorCount > 0 && dataStart > file.byteSize()) {
            throw error("file ends before the tensor data section (needs " + dataStart + " bytes, has " + file.byteSize() + ")");
        }

        SequencedMap<String, GgufTensorInfo> infos = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            GgufTensorInfo info = tensorInfo(names.get(i), types.get(i), dimsList.get(i), offsets.get(i));
            if (infos.put(info.name(), info) != null) {
                throw error("tensor " + info.name() + " appears twice");
            }
        }
        tensors = Collections.unmodifiableSequencedMap(infos);
    }

    /** Maps and parses {@code path}; the mapping lives until {@link #close()}. */
    public static GgufFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            return new GgufFile(path.toString(), arena, true, map(path, arena));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Maps and parses {@code path} into a caller-owned arena (the mapping lives as long as it does). */
    public static GgufFile open(Path path, Arena arena) {
        return new GgufFile(path.toString(), arena, false, map(path, arena));
    }

    /** Parses bytes already in memory (tests, fuzzing); {@code source} names them in errors. */
    public static GgufFile parse(String source, MemorySegment bytes) {
        return new GgufFile(source, null, false, bytes);
    }

    private static MemorySegment map(Path path, Arena arena) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        } catch (IOException e) {
            throw new ModelFormatException(path.toString(), "cannot read: " + e.getMessage(), e);
        }
    }

    public String source() {
        return source;
    }

    public int version() {
        return version;
    }

    public int alignment() {
        return alignment;
    }

    public long dataStart() {
        return dataStart;
    }

    public long fileSize() {
        return file.byteSize();
    }

    public GgufMetadata metadata() {
        return metadata;
    }

    public SequencedMap<String, GgufTensorInfo> tensors() {
        return tensors;
    }

    public GgufTensorInfo tensor(String name) {
        GgufTensorInfo info = tensors.get(name);
        if (info == null) {
            throw error("tensor " + name + " is missing");
        }
        return info;
    }

    /** The tensor's bytes, a slice of the mapping (no copy). */
    public MemorySegment data(GgufTensorInfo info) {
        return file.asSlice(info.fileOffset(), info.byteSize());
    }

    @Override
    public void close() {
        if (ownsArena) {
            arena.close();
        }
    }

    // ---- parsing ----

    private GgufTensorInfo tensorInfo(String name, GgmlType type, long[] dims, long relativeOffset) {
        String where = "tensor " + name;
        long elements = 1;
        for (long d : dims) {
            if (d < 1) {
                throw error(where + " has dimension " + d + "; every dimension must be at least 1");
            }
            try {
                elements = Math.multiplyExact(elements, d);
            } catch (ArithmeticException overflow) {
                throw error(where + " has an element count that overflows 64 bits");
            }
        }
        if (relativeOffset < 0 || relativeOffset % alignment != 0) {
            throw error(where + " has offset " + relativeOffset + ", which is not a non-negative multiple of the alignment " + alignment);
        }
        long rowBytes = type.bytesFor(dims[0], source + " " + where);
        long bytes;
        try {
            bytes = Math.multiplyExact(rowBytes, elements / dims[0]);
        } catch (ArithmeticException overflow) {
            throw error(where + " has a byte size that overflows 64 bits");
        }
        long start = dataStart + relativeOffset;
        if (start < dataStart || bytes > file.byteSize() - start || start > file.byteSize()) {
            throw error(where + " occupies bytes [" + start + ", " + (start + bytes) + ") but the file has " + file.byteSize()
                    + " bytes (truncated, or a corrupt offset)");
        }
        return new GgufTensorInfo(name, type, dims, start, bytes);
    }

    private int readAlignment() {
        GgufValue v = metadata.raw("general.alignment");
        if (v == null) {
            return DEFAULT_ALIGNMENT;
        }
        if (!v.type().isInteger()) {
            throw error("general.alignment should be an integer but is " + v.type());
        }
        long a = (Long) v.value();
        if (a < 1 || a > (1 << 20) || Long.bitCount(a) != 1) {
            throw error("general.alignment " + a + " is not a power of two between 1 and 2^20");
        }
        return (int) a;
    }

    private GgufValue readValue(String key, GgufValueType type, int depth) {
        return switch (type) {
            case UINT8 -> GgufValue.of(type, (long) Byte.toUnsignedInt(readByte()));
            case INT8 -> GgufValue.of(type, (long) readByte());
            case UINT16 -> GgufValue.of(type, (long) Short.toUnsignedInt(readI16()));
            case INT16 -> GgufValue.of(type, (long) readI16());
            case UINT32 -> GgufValue.of(type, Integer.toUnsignedLong(readI32()));
            case INT32 -> GgufValue.of(type, (long) readI32());
            case UINT64, INT64 -> GgufValue.of(type, readI64());
            case FLOAT32 -> GgufValue.of(type, readF32());
            case FLOAT64 -> GgufValue.of(type, readF64());
            case BOOL -> {
                byte b = readByte();
                if (b != 0 && b != 1) {
                    throw error("metadata " + key + " is a bool with value " + b + " (expected 0 or 1)");
                }
                yield GgufValue.of(type, b == 1);
            }
            case STRING -> GgufValue.of(type, readString("metadata " + key));
            case ARRAY -> readArray(key, depth);
        };
    }

    private GgufValue readArray(String key, int depth) {
        if (depth >= MAX_ARRAY_NESTING) {
            throw error("metadata " + key + " nests arrays deeper than " + MAX_ARRAY_NESTING);
        }
        int typeId = readI32();
        GgufValueType elementType = GgufValueType.byId(typeId);
        if (elementType == null) {
            throw error("metadata " + key + " is an array of unknown value type " + typeId);
        }
        long count = readI64();
        checkCount("length of array " + key, count, elementType.minBytes);
        int n = (int) count;
        Object elements = switch (elementType) {
            case FLOAT32 -> {
                float[] a = new float[n];
                for (int i = 0; i < n; i++) {
                    a[i] = readF32();
                }
                yield a;
            }
            case FLOAT64 -> {
                double[] a = new double[n];
                for (int i = 0; i < n; i++) {
                    a[i] = readF64();
                }
                yield a;
            }
            case BOOL -> {
                boolean[] a = new boolean[n];
                for (int i = 0; i < n; i++) {
                    a[i] = readByte() != 0;
                }
                yield a;
            }
            case STRING -> {
                List<String> a = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    a.add(readString("metadata " + key + "[" + i + "]"));
                }
                yield Collections.unmodifiableList(a);
            }
            case ARRAY -> {
                List<GgufValue> a = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    a.add(readArray(key + "[" + i + "]", depth + 1));
                }
                yield Collections.unmodifiableList(a);
            }
            default -> {
                long[] a = new long[n];
                for (int i = 0; i < n; i++) {
                    a[i] = (Long) readValue(key, elementType, depth).value();
                }
                yield a;
            }
        };
        return GgufValue.array(elementType, elements);
    }

    /** A count is plausible only if that many of the smallest possible elements fit in what is left. */
    private void checkCount(String what, long count, int minBytesEach) {
        long remaining = file.byteSize() - pos;
        if (count < 0 || count > remaining / minBytesEach) {
            throw error(what + " is " + Long.toUnsignedString(count) + ", more than the " + remaining
                    + " bytes left in the file can hold");
        }
        if (count > MAX_ENTRIES) {
            throw error(what + " is " + count + ", above Lathe's limit of " + MAX_ENTRIES);
        }
    }

    private String readString(String what) {
        long length = readI64();
        if (length < 0 || length > file.byteSize() - pos) {
            throw error(what + " has length " + Long.toUnsignedString(length) + " but only " + (file.byteSize() - pos)
                    + " bytes are left in the file");
        }
        if (length > MAX_STRING_BYTES) {
            throw error(what + " has length " + length + ", above Lathe's limit of " + MAX_STRING_BYTES + " bytes");
        }
        byte[] bytes = new byte[(int) length];
        MemorySegment.copy(file, ValueLayout.JAVA_BYTE, pos, bytes, 0, (int) length);
        pos += length;
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw error(what + " is not valid UTF-8");
        }
    }

    private void need(int bytes) {
        if (pos + bytes > file.byteSize()) {
            throw error("file is truncated: needed " + bytes + " more bytes at offset " + pos + " but it ends at " + file.byteSize());
        }
    }

    private byte readByte() {
        need(1);
        return file.get(ValueLayout.JAVA_BYTE, pos++);
    }

    private short readI16() {
        need(2);
        short v = file.get(I16, pos);
        pos += 2;
        return v;
    }

    private int readI32() {
        need(4);
        int v = file.get(I32, pos);
        pos += 4;
        return v;
    }

    private long readI64() {
        need(8);
        long v = file.get(I64, pos);
        pos += 8;
        return v;
    }

    private float readF32() {
        need(4);
        float v = file.get(F32, pos);
        pos += 4;
        return v;
    }

    private double readF64() {
        need(8);
        double v = file.get(F64, pos);
        pos += 8;
        return v;
    }

    static long alignUp(long offset, long alignment) {
        return (offset + alignment - 1) / alignment * alignment;
    }

    private ModelFormatException error(String problem) {
        return new ModelFormatException(source, problem);
    }
}
