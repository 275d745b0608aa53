package dev.lathe.cuda;

import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Turns a model file's weight into the layout the CUDA kernels read, once, on the CPU
 * (DESIGN.md, "Backend.upload ... repack once into the kernel layout").
 * <ul>
 * <li>F32, F16, BF16: the same bytes (already the kernel layout).</li>
 * <li>Q8_0, Q4_0: each ggml block (f16 scale + quants, 34 / 18 bytes, only 2-byte aligned) is
 *     split into a quants array, whose groups of 32 are 32 / 16 bytes and so 16-byte aligned
 *     vector loads, and a separate array of the f16 scales. Values are bit-identical.</li>
 * <li>Q4_K, Q5_K, Q6_K: the file's blocks as they are (the kernels read ggml's layout directly).</li>
 * <li>Lathe's group-wise INT (4, 3 or 2 bits, groups of 32/64/128) and NF4 (blocks of 64): the
 *     4-bit kernels' layouts ({@link Int4Weights}, {@link Nf4Weights}), values unchanged; the
 *     backend repacks those itself.</li>
 * <li>Lathe's 2:4 sparse F16: its bytes are the 2:4 kernel's layout already ({@link Sparse24Weights}).</li>
 * <li>Lathe's INT8 per channel (cols a multiple of 32): the Q8_0 layout, the int8 as they are
 *     and the row's f32 scale as the f16 scale of each group of 32 (relative error under 2^-11,
 *     the same for the whole row).</li>
 * <li>Every other format (Q4_1, Q5_0, Q5_1, and the Lathe formats with other group
 *     sizes): dequantized to F16 rows, so any supported model runs on the GPU; this costs memory
 *     and rounds each weight to f16 (relative error under 2^-11). Dedicated kernels for them are
 *     listed as not done.</li>
 * <li>Vectors (one row: norm weights, biases) always become F32, the layout the norm and bias
 *     kernels read.</li>
 * </ul>
 */
final class WeightRepacker {
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int GROUP = 32;

    private WeightRepacker() {
    }

    /** The layout {@code w} will have on the device. */
    static KernelLayout layoutFor(WeightMatrix w) {
        if (w.rows() == 1) {
            return KernelLayout.F32;
        }
        if (w.format() instanceof LatheFormat f) {
            return switch (f.kind()) {
                case INT_GROUP -> Int4Weights.holds(f) ? KernelLayout.INT4_GROUP : KernelLayout.F16;
                case INT_GROUP_ACT_ORDER -> KernelLayout.F16; // scattered groups (GPTQ act-order): dequantized rows
                case NF4 -> Nf4Weights.holds(f) ? KernelLayout.NF4 : KernelLayout.F16;
                case INT8_CHANNEL -> w.cols() % GROUP == 0 ? KernelLayout.Q8_0 : KernelLayout.F16;
                case SPARSE24_F16 -> KernelLayout.SPARSE24;
                case SPARSE24_INT -> KernelLayout.F16;  // no 2:4 + INT4 kernel yet: dense F16, zeros included
            };
        }
        return switch (w.type()) {
            case F32 -> KernelLayout.F32;
            case F16 -> KernelLayout.F16;
            case BF16 -> KernelLayout.BF16;
            case Q8_0 -> KernelLayout.Q8_0;
            case Q4_0 -> KernelLayout.Q4_0;
            case Q4_K -> KernelLayout.Q4_K;
            case Q6_K -> KernelLayout.Q6_K;
            case Q5_K -> KernelLayout.Q5_K;
            default -> KernelLayout.F16;
        };
    }

    /**
     * {@code w} in its kernel layout, in memory of {@code arena}; not for INT4_GROUP, NF4 and
     * SPARSE24 ({@link Int4Weights#of}, {@link Nf4Weights#of}, {@link Sparse24Weights#of}).
     */
    static RepackedWeight repack(WeightMatrix w, Arena arena) {
        KernelLayout layout = layoutFor(w);
        if (layout.code < 0) {
            throw new IllegalArgumentException(w.name() + ": the " + layout + " layout is made by its own record");
        }
        int rows = w.rows();
        int cols = w.cols();
        boolean lathe = w.format() instanceof LatheFormat;
        boolean sameBytes = !lathe && ((layout == KernelLayout.F32 && w.type() == GgmlType.F32)
                || (layout == KernelLayout.F16 && w.type() == GgmlType.F16)
                || (layout == KernelLayout.BF16 && w.type() == GgmlType.BF16)
                || layout == KernelLayout.Q4_K || layout == KernelLayout.Q5_K || layout == KernelLayout.Q6_K);
        if (sameBytes) {
            // Already the kernel layout: the file's bytes go to the device as they are, no copy here.
            return new RepackedWeight(layout, rows, cols, w.data().asSlice(0, layout.valuesBytes(rows, cols)),
                    MemorySegment.NULL);
        }
        MemorySegment values = arena.allocate(layout.valuesBytes(rows, cols), 16);
        MemorySegment scales = layout.hasScales() ? arena.allocate(layout.scalesBytes(rows, cols), 16) : MemorySegment.NULL;
        if (lathe && layout == KernelLayout.Q8_0) {
            int8ChannelToQ8_0(w, values, scales);
        } else if (layout == KernelLayout.Q8_0 || layout == KernelLayout.Q4_0) {
            splitBlocks(w, layout, values, scales);
        } else {
            dequantize(w, layout, values);
        }
        return new RepackedWeight(layout, rows, cols, values, scales);
    }

    // ggml Q8_0 block: f16 d, int8 qs[32]; Q4_0 block: f16 d, uint8 qs[16].
    private static void splitBlocks(WeightMatrix w, KernelLayout layout, MemorySegment values, MemorySegment scales) {
        int quantBytes = layout == KernelLayout.Q8_0 ? GROUP : GROUP / 2;
        int blockBytes = 2 + quantBytes;
        long blocks = (long) w.rows() * (w.cols() / GROUP);
        MemorySegment src = w.data();
        for (long b = 0; b < blocks; b++) {
            long at = b * blockBytes;
            scales.set(HALF, 2 * b, src.get(HALF, at));
            MemorySegment.copy(src, at + 2, values, b * quantBytes, quantBytes);
        }
    }

    // INT8 per channel: per row an f32 scale, then cols int8 (LatheFormat.Kind.INT8_CHANNEL).
    private static void int8ChannelToQ8_0(WeightMatrix w, MemorySegment values, MemorySegment scales) {
        long rowBytes = ((LatheFormat) w.format()).rowBytes(w.cols());
        int groups = w.cols() / GROUP;
        MemorySegment src = w.data();
        for (int r = 0; r < w.rows(); r++) {
            long at = r * rowBytes;
            short scale = Float.floatToFloat16(src.get(FLOAT, at));
            for (int g = 0; g < groups; g++) {
                scales.set(HALF, 2 * ((long) r * groups + g), scale);
            }
            MemorySegment.copy(src, at + 4, values, (long) r * w.cols(), w.cols());
        }
    }

    private static void dequantize(WeightMatrix w, KernelLayout layout, MemorySegment values) {
        float[] row = new float[w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            w.dequantizeRow(r, row, 0);
            long base = (long) r * w.cols();
            if (layout == KernelLayout.F32) {
                for (int i = 0; i < row.length; i++) {
                    values.set(FLOAT, 4 * (base + i), row[i]);
                }
            } else {
                for (int i = 0; i < row.length; i++) {
                    values.set(HALF, 2 * (base + i), Float.floatToFloat16(row[i]));
                }
            }
        }
    }

    /**
     * W[row, col] read back from a repacked weight: the kernels' reading of the layout
     * (kernels/common/weight_formats.cuh, load_weight), in Java, for tests.
     */
    static float valueAt(RepackedWeight p, int row, int col) {
        long index = (long) row * p.cols() + col;
        return switch (p.layout()) {
            case INT4_GROUP, NF4, SPARSE24 -> throw new IllegalArgumentException("read " + p.layout() + " through its record");
            case F32 -> p.values().get(FLOAT, 4 * index);
            case F16 -> Float.float16ToFloat(p.values().get(HALF, 2 * index));
            case BF16 -> Float.intBitsToFloat((p.values().get(HALF, 2 * index) & 0xFFFF) << 16);
            case Q8_0 -> p.values().get(ValueLayout.JAVA_BYTE, index) * scaleAt(p, row, col);
            case Q4_0 -> {
                int within = col % GROUP;
                long at = (long) row * (p.cols() / 2) + (col / GROUP) * 16L + (within & 15);
                int packed = p.values().get(ValueLayout.JAVA_BYTE, at) & 0xFF;
                int q = within < 16 ? packed & 0x0F : packed >>> 4;
                yield (q - 8) * scaleAt(p, row, col);
            }
            case Q4_K, Q5_K -> {
                // Q5_K: 176-byte blocks, qs at 48, and bit j of qh[l] (at 16) as bit 4 of q
                boolean q5 = p.layout() == KernelLayout.Q5_K;
                long block = ((long) row * (p.cols() / 256) + col / 256) * (q5 ? 176 : 144);
                int v = col % 256;
                int chunk = v / 64;
                int high = (v % 64) / 32;
                int j = 2 * chunk + high;
                int sc = j < 4 ? u8(p, block + 4 + j) & 63
                        : (u8(p, block + 4 + j + 4) & 0x0F) | ((u8(p, block + 4 + j - 4) >>> 6) << 4);
                int m = j < 4 ? u8(p, block + 4 + j + 4) & 63
                        : (u8(p, block + 4 + j + 4) >>> 4) | ((u8(p, block + 4 + j) >>> 6) << 4);
                int packed = u8(p, block + (q5 ? 48 : 16) + 32L * chunk + v % 32);
                int q = high == 1 ? packed >>> 4 : packed & 0x0F;
                if (q5) {
                    q |= ((u8(p, block + 16 + v % 32) >>> j) & 1) << 4;
                }
                float d = Float.float16ToFloat(p.values().get(HALF, block));
                float dmin = Float.float16ToFloat(p.values().get(HALF, block + 2));
                yield d * sc * q - dmin * m;
            }
            case Q6_K -> {
                long block = ((long) row * (p.cols() / 256) + col / 256) * 210;
                int v = col % 256;
                int h = v / 128;
                int k = (v % 128) / 32;
                int l = v % 32;
                int low = u8(p, block + 64L * h + (k & 1) * 32L + l);
                int lowBits = k >= 2 ? low >>> 4 : low & 0x0F;
                int q = lowBits | ((u8(p, block + 128 + 32L * h + l) >>> (2 * k)) & 3) << 4;
                int scale = p.values().get(ValueLayout.JAVA_BYTE, block + 192 + 8L * h + l / 16 + 2L * k);
                yield Float.float16ToFloat(p.values().get(HALF, block + 208)) * scale * (q - 32);
            }
        };
    }

    private static int u8(RepackedWeight p, long offset) {
        return p.values().get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }

    private static float scaleAt(RepackedWeight p, int row, int col) {
        return Float.float16ToFloat(p.scales().get(HALF, 2 * ((long) row * (p.cols() / GROUP) + col / GROUP)));
    }
}
