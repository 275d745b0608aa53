package dev.lathe.tools.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes safetensors: an 8-byte little-endian header length, a JSON header (dtype, shape,
 * data_offsets per tensor, optional {@code __metadata__} strings), then the tensors' bytes. A
 * model goes to {@code model.safetensors}, or above a size limit to shards
 * {@code model-0000i-of-0000n.safetensors} with the {@code model.safetensors.index.json} that
 * transformers writes ({@code metadata.total_size}, {@code weight_map}).
 */
// NOTE: tensors are held as byte arrays until written: the exporter's input model is in memory
// already, so this doubles its size at worst; streaming per shard is left for larger models.
public final class SafetensorsWriter {
    private record Entry(String name, String dtype, long[] shape, byte[] data) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter add(String name, String dtype, long[] shape, byte[] littleEndianData) {
        entries.add(new Entry(name, dtype, shape.clone(), littleEndianData));
        return this;
    }

    public SafetensorsWriter addInt32(String name, long[] shape, int[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        return add(name, "I32", shape, b.array());
    }

    public SafetensorsWriter addFloat16(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putShort(Float.floatToFloat16(v));
        }
        return add(name, "F16", shape, b.array());
    }

    public SafetensorsWriter addFloat32(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return add(name, "F32", shape, b.array());
    }

    /** Bytes of tensor data added so far. */
    public long dataBytes() {
        long total = 0;
        for (Entry e : entries) {
            total += e.data().length;
        }
        return total;
    }

    /** Writes every tensor added to one safetensors file. */
    public void write(Path path) {
        write(path, entries);
    }

    /**
     * Writes the tensors into {@code directory} as {@code model.safetensors} when their data fits
     * {@code maxShardBytes}, else as shards of at most that much (a larger single tensor gets a
     * shard of its own) plus the index. Returns the files written.
     */
    public List<Path> writeModel(Path directory, long maxShardBytes) {
        List<List<Entry>> shards = new ArrayList<>();
        List<Entry> current = new ArrayList<>();
        long currentBytes = 0;
        for (Entry e : entries) {
            if (!current.isEmpty() && currentBytes + e.data().length > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(e);
            currentBytes += e.data().length;
        }
        shards.add(current);
        if (shards.size() == 1) {
            Path single = directory.resolve("model.safetensors");
            write(single, shards.getFirst());
            return List.of(single);
        }
        List<Path> written = new ArrayList<>();
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", dataBytes());
        ObjectNode weightMap = index.putObject("weight_map");
        for (int i = 0; i < shards.size(); i++) {
            String file = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            write(directory.resolve(file), shards.get(i));
            written.add(directory.resolve(file));
            for (Entry e : shards.get(i)) {
                weightMap.put(e.name(), file);
            }
        }
        Path indexFile = directory.resolve("model.safetensors.index.json");
        try {
            JSON.writerWithDefaultPrettyPrinter().writeValue(indexFile.toFile(), index);
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + indexFile, e);
        }
        written.add(indexFile);
        return written;
    }

    private void write(Path path, List<Entry> tensors) {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode md = header.putObject("__metadata__");
            metadata.forEach(md::put);
        }
        long offset = 0;
        for (Entry e : tensors) {
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", e.dtype());
            var shape = t.putArray("shape");
            for (long d : e.shape()) {
                shape.add(d);
            }
            var offsets = t.putArray("data_offsets");
            offsets.add(offset);
            offset += e.data().length;
            offsets.add(offset);
        }
        byte[] headerBytes;
        try {
            headerBytes = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int padding = (8 - headerBytes.length % 8) % 8; // the spec allows trailing spaces; aligned data is kinder
        try (OutputStream out = Files.newOutputStream(path)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length + padding).array());
            out.write(headerBytes);
            out.write(" ".repeat(padding).getBytes(StandardCharsets.US_ASCII));
            for (Entry e : tensors) {
                out.write(e.data());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + path, e);
        }
    }
}
