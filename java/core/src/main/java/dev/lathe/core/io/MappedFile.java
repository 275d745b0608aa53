package dev.lathe.core.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A whole file mapped read-only into an {@link Arena}, with bounds-checked little-endian reads.
 * Every read past the end is a {@link ModelFormatException} that names the file, the field and
 * the offsets, so a truncated or hostile file never gets as far as an IndexOutOfBoundsException.
 */
public final class MappedFile {
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final MemorySegment bytes;

    private MappedFile(Path path, MemorySegment bytes) {
        this.path = path;
        this.bytes = bytes;
    }

    /** Maps {@code path} for as long as {@code arena} lives. A missing or unreadable file is a {@link ModelFormatException}. */
    public static MappedFile map(Path path, Arena arena) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            // NOTE: an empty file cannot be mapped; an empty segment makes every read report truncation instead.
            MemorySegment bytes = size == 0 ? MemorySegment.ofArray(new byte[0])
                    : channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new MappedFile(path, bytes);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path.toString(), "file not found", e);
        } catch (IOException e) {
            throw new ModelFormatException(path.toString(), "cannot be read: " + e.getMessage(), e);
        }
    }

    /** Reads the first {@code n} bytes (fewer when the file is shorter) without mapping it. */
    public static byte[] readPrefix(Path path, int n) {
        try (var in = Files.newInputStream(path)) {
            return in.readNBytes(n);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path.toString(), "file not found", e);
        } catch (IOException e) {
            throw new ModelFormatException(path.toString(), "cannot be read: " + e.getMessage(), e);
        }
    }

    public Path path() {
        return path;
    }

    /** The file name as used in error messages. */
    public String source() {
        return path.toString();
    }

    public long size() {
        return bytes.byteSize();
    }

    /** The whole mapping. */
    public MemorySegment bytes() {
        return bytes;
    }

    public int int32(long offset, String field) {
        require(offset, 4, field);
        return bytes.get(INT_LE, offset);
    }

    public long int64(long offset, String field) {
        require(offset, 8, field);
        return bytes.get(LONG_LE, offset);
    }

    public int uint8(long offset, String field) {
        require(offset, 1, field);
        return Byte.toUnsignedInt(bytes.get(ValueLayout.JAVA_BYTE, offset));
    }

    /** {@code length} bytes at {@code offset}, still mapped (no copy). */
    public MemorySegment slice(long offset, long length, String what) {
        require(offset, length, what);
        return bytes.asSlice(offset, length);
    }

    private void require(long offset, long length, String what) {
        if (offset < 0 || length < 0 || offset > size() - length) {
            throw new ModelFormatException(source(), "truncated: " + what + " needs " + length + " bytes at offset " + offset
                    + " but the file has " + size() + " bytes");
        }
    }
}
