package dev.lathe.core.format.hf;

import static dev.lathe.core.format.hf.PackedTensors.F32;
import static dev.lathe.core.format.hf.PackedTensors.checkShape;
import static dev.lathe.core.format.hf.PackedTensors.elements;
import static dev.lathe.core.format.hf.PackedTensors.require;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.Nf4Codebook;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Reads a bitsandbytes 4-bit NF4 linear layer ({@code Linear4bit}, {@code Params4bit} serialized
 * by transformers) into Lathe's NF4. For a weight {@code [N, K]} named {@code P.weight}:
 * <ul>
 * <li>{@code P.weight} U8 {@code [N * K / 2, 1]}: the row-major codes, two per byte, the first in the high nibble</li>
 * <li>{@code P.weight.quant_map} F32 {@code [16]}: the code values (must be the NF4 table)</li>
 * <li>{@code P.weight.quant_state.bitsandbytes__nf4} U8: JSON {@code {quant_type, blocksize, dtype, shape}},
 *     with double quantization also {@code nested_blocksize, nested_dtype, nested_offset}</li>
 * <li>without double quantization: {@code P.weight.absmax} F32 {@code [N * K / blocksize]}</li>
 * <li>with it: {@code P.weight.absmax} U8 (one code per block), {@code P.weight.nested_absmax}
 *     F32 (one per {@code nested_blocksize} codes) and {@code P.weight.nested_quant_map} F32
 *     {@code [256]}; a block's absmax is {@code nested_quant_map[code] * nested_absmax[b / nested_blocksize] + nested_offset}</li>
 * </ul>
 * Double quantization with {@code nested_blocksize} 256 and a linear code map ({@code
 * nested_quant_map[u] = (byte) u}, what Lathe writes) becomes Lathe's double-quant NF4 exactly;
 * any other code map (bitsandbytes' own "dynamic" map) is decoded to one f32 absmax per block, as
 * bitsandbytes decodes it, and stored as plain NF4.
 */
public final class BnbNf4Tensors {
    /** The suffix of the tensor whose presence marks a bitsandbytes 4-bit weight. */
    public static final String STATE_PREFIX = ".weight.quant_state.bitsandbytes__";

    /** Bound on the packed JSON quant state: a few hundred bytes in practice. */
    private static final long MAX_STATE_BYTES = 1 << 16;

    private BnbNf4Tensors() {
    }

    /** The matrix stored as {@code prefix.weight*} bitsandbytes tensors, named {@code name}, which must be {@code [rows, cols]}. */
    public static WeightMatrix read(Map<String, SafetensorsFile.Tensor> all, String source, String prefix, String name,
                                    int rows, int cols, Arena arena) {
        String weightName = prefix + ".weight";
        JsonNode state = state(all, source, prefix);
        String quantType = state.path("quant_type").asText("");
        if (!quantType.equals("nf4")) {
            throw new ModelFormatException(source, weightName + " quant_state quant_type '" + quantType + "' is not supported; Lathe reads nf4");
        }
        JsonNode shape = state.path("shape");
        if (!shape.isArray() || shape.size() != 2 || shape.get(0).asLong(-1) != rows || shape.get(1).asLong(-1) != cols) {
            throw new ModelFormatException(source, weightName + " quant_state shape is " + shape + ", expected [" + rows + ", " + cols + "]");
        }
        int blocksize = state.path("blocksize").asInt(-1);
        LatheFormat plain;
        try {
            plain = LatheFormat.nf4(blocksize);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(source, weightName + " quant_state blocksize " + state.path("blocksize") + ": " + e.getMessage(), e);
        }
        if (cols % blocksize != 0) {
            throw new ModelFormatException(source, weightName + ": blocks of " + blocksize + " do not divide its rows of " + cols
                    + " (Lathe's NF4 keeps each block within a row)");
        }
        SafetensorsFile.Tensor weight = require(all, source, weightName, "U8");
        if (elements(weight) != (long) rows * cols / 2) {
            throw new ModelFormatException(source, "tensor '" + weightName + "' has " + elements(weight) + " bytes, expected "
                    + (long) rows * cols / 2 + " (two codes per byte of a [" + rows + ", " + cols + "] matrix)");
        }
        SafetensorsFile.Tensor quantMap = require(all, source, weightName + ".quant_map", "F32");
        checkShape(source, quantMap, "the 16 code values", 16);
        float[] nf4 = Nf4Codebook.values();
        for (int c = 0; c < 16; c++) {
            if (quantMap.data().getAtIndex(F32, c) != nf4[c]) {
                throw new ModelFormatException(source, "tensor '" + quantMap.name() + "' entry " + c + " is "
                        + quantMap.data().getAtIndex(F32, c) + ", not the NF4 value " + nf4[c]);
            }
        }
        int groups = Math.toIntExact((long) rows * cols / blocksize);
        boolean nested = state.has("nested_blocksize") || all.containsKey(weightName + ".nested_absmax");
        byte[] codes = codes(weight, rows, cols);
        if (!nested) {
            SafetensorsFile.Tensor absmax = require(all, source, weightName + ".absmax", "F32");
            checkShape(source, absmax, "one absmax per block of " + blocksize, groups);
            float[] values = new float[groups];
            for (int b = 0; b < groups; b++) {
                values[b] = absmax.data().getAtIndex(F32, b);
            }
            return plain(name, plain, codes, values, rows, cols, arena);
        }
        SafetensorsFile.Tensor absmaxCodes = require(all, source, weightName + ".absmax", "U8");
        checkShape(source, absmaxCodes, "one absmax code per block of " + blocksize, groups);
        int nestedBlock = state.path("nested_blocksize").asInt(-1);
        if (nestedBlock < 1 || nestedBlock > 1 << 20) {
            throw new ModelFormatException(source, weightName + " quant_state nested_blocksize " + state.path("nested_blocksize")
                    + " is not a positive block size");
        }
        JsonNode offsetNode = state.path("nested_offset");
        if (!offsetNode.isNumber()) {
            throw new ModelFormatException(source, weightName + " quant_state nested_offset is " + offsetNode + ", expected a number");
        }
        float offset = (float) offsetNode.asDouble();
        SafetensorsFile.Tensor nestedAbsmax = require(all, source, weightName + ".nested_absmax", "F32");
        checkShape(source, nestedAbsmax, "one scale per " + nestedBlock + " absmax codes", Math.ceilDiv(groups, nestedBlock));
        SafetensorsFile.Tensor nestedMap = require(all, source, weightName + ".nested_quant_map", "F32");
        checkShape(source, nestedMap, "the 256 values of the absmax codes", 256);
        byte[] absmax = new byte[groups];
        MemorySegment.copy(absmaxCodes.data(), ValueLayout.JAVA_BYTE, 0, absmax, 0, groups);
        float[] scales = new float[Math.ceilDiv(groups, nestedBlock)];
        for (int k = 0; k < scales.length; k++) {
            scales[k] = nestedAbsmax.data().getAtIndex(F32, k);
        }
        if (nestedBlock == LatheFormat.DQ_BLOCK && isLinear(nestedMap)) {
            LatheFormat format = LatheFormat.nf4DoubleQuant(blocksize);
            MemorySegment data = arena.allocate(format.matrixBytes(rows, cols), 8);
            LatheEncoder.packNf4DoubleQuant(format, codes, new LatheEncoder.AbsmaxCodes(absmax, offset, scales), rows, cols, data);
            return WeightMatrices.of(name, format, rows, cols, data);
        }
        float[] values = new float[groups];
        for (int b = 0; b < groups; b++) {
            values[b] = nestedMap.data().getAtIndex(F32, absmax[b] & 0xFF) * scales[b / nestedBlock] + offset;
        }
        return plain(name, plain, codes, values, rows, cols, arena);
    }

    /** True when {@code map[u]} is the signed byte {@code u}: Lathe's linear int8 absmax codes. */
    private static boolean isLinear(SafetensorsFile.Tensor map) {
        for (int u = 0; u < 256; u++) {
            if (map.data().getAtIndex(F32, u) != (byte) u) {
                return false;
            }
        }
        return true;
    }

    private static JsonNode state(Map<String, SafetensorsFile.Tensor> all, String source, String prefix) {
        String name = prefix + STATE_PREFIX + "nf4";
        if (!all.containsKey(name)) {
            String other = all.keySet().stream().filter(n -> n.startsWith(prefix + STATE_PREFIX)).findFirst().orElse(prefix + STATE_PREFIX + "nf4");
            if (!other.equals(name)) {
                throw new ModelFormatException(source, "tensor '" + other + "': bitsandbytes " + other.substring((prefix + STATE_PREFIX).length())
                        + " is not supported; Lathe reads nf4");
            }
        }
        SafetensorsFile.Tensor t = require(all, source, name, "U8");
        if (t.data().byteSize() > MAX_STATE_BYTES) {
            throw new ModelFormatException(source, "tensor '" + name + "' is " + t.data().byteSize() + " bytes; a quant state is JSON of at most "
                    + MAX_STATE_BYTES);
        }
        String json = new String(t.data().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        try {
            JsonNode node = HfConfig.JSON.readTree(json);
            if (node == null || !node.isObject()) {
                throw new ModelFormatException(source, "tensor '" + name + "' is not a JSON object");
            }
            return node;
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(source, "tensor '" + name + "' is not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** The codes of a [rows, cols] matrix, row-major, from bytes holding the first of each pair in the high nibble. */
    private static byte[] codes(SafetensorsFile.Tensor weight, int rows, int cols) {
        long n = (long) rows * cols;
        byte[] codes = new byte[Math.toIntExact(n)];
        for (long i = 0; i < n; i += 2) {
            int b = weight.data().get(ValueLayout.JAVA_BYTE, i / 2) & 0xFF;
            codes[(int) i] = (byte) (b >>> 4);
            codes[(int) i + 1] = (byte) (b & 0x0F);
        }
        return codes;
    }

    private static WeightMatrix plain(String name, LatheFormat format, byte[] codes, float[] absmax, int rows, int cols, Arena arena) {
        int groupsPerRow = cols / format.groupSize();
        long rowBytes = format.rowBytes(cols);
        MemorySegment data = arena.allocate(format.matrixBytes(rows, cols), 8);
        byte[] rowCodes = new byte[cols];
        float[] rowAbsmax = new float[groupsPerRow];
        for (int row = 0; row < rows; row++) {
            System.arraycopy(codes, row * cols, rowCodes, 0, cols);
            System.arraycopy(absmax, row * groupsPerRow, rowAbsmax, 0, groupsPerRow);
            LatheEncoder.packNf4Row(format, rowCodes, rowAbsmax, cols, data, row * rowBytes);
        }
        return WeightMatrices.of(name, format, rows, cols, data);
    }
}
