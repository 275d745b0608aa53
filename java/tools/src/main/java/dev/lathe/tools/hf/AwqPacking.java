package dev.lathe.tools.hf;

import dev.lathe.core.format.hf.SafetensorsFile;
import dev.lathe.core.io.ModelFormatException;
import dev.lathe.core.tensor.LatheEncoder;
import dev.lathe.core.tensor.LatheEncoder.Grid;
import dev.lathe.core.tensor.LatheFormat;
import dev.lathe.core.tensor.WeightFormat;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * INT4 group-wise matrices as AWQ "GEMM" tensors (llm-awq / AutoAWQ {@code WQLinear_GEMM}) and
 * back. For a linear layer {@code [N out, K in]} named {@code P}:
 * <ul>
 * <li>{@code P.qweight} int32 {@code [K, N / 8]}: levels packed along N, eight outputs per word in
 *     AWQ's interleaved order: nibble {@code i} of word {@code j} holds output {@code 8j + ORDER[i]}</li>
 * <li>{@code P.qzeros} int32 {@code [K / g, N / 8]}: zero points packed the same way (stored as is)</li>
 * <li>{@code P.scales} f16 {@code [K / g, N]}</li>
 * </ul>
 */
public final class AwqPacking {
    /** Which output each nibble of a word holds: AWQ's GEMM kernels unpack in this order. */
    static final int[] ORDER = {0, 2, 4, 6, 1, 3, 5, 7};

    private AwqPacking() {
    }

    public static void write(WeightMatrix w, String prefix, SafetensorsWriter out) {
        if (!(w.format() instanceof LatheFormat f) || f.kind() != LatheFormat.Kind.INT_GROUP || f.bits() != 4) {
            throw new IllegalArgumentException(w.name() + " is " + w.format().name() + ": AWQ export needs 4-bit group-wise INT");
        }
        int n = w.rows();
        int k = w.cols();
        int g = f.groupSize();
        int groups = k / g;
        if (n % 8 != 0) {
            throw new IllegalArgumentException(w.name() + ": AWQ packs 8 outputs per word; " + n + " outputs do not divide");
        }
        int[] qweight = new int[k * (n / 8)];
        int[] qzeros = new int[groups * (n / 8)];
        float[] scales = new float[groups * n];
        byte[] levels = new byte[k];
        Grid[] grids = new Grid[groups];
        int[] nibbleOf = new int[8]; // inverse of ORDER: output 8j + o sits in nibble nibbleOf[o]
        for (int i = 0; i < 8; i++) {
            nibbleOf[ORDER[i]] = i;
        }
        for (int row = 0; row < n; row++) {
            LatheEncoder.unpackIntGroupRow(w, row, levels, grids);
            int word = row / 8;
            int shift = 4 * nibbleOf[row % 8];
            for (int i = 0; i < k; i++) {
                qweight[i * (n / 8) + word] |= (levels[i] & 0xF) << shift;
            }
            for (int b = 0; b < groups; b++) {
                scales[b * n + row] = grids[b].scale();
                qzeros[b * (n / 8) + word] |= (grids[b].zero() & 0xF) << shift;
            }
        }
        out.addInt32(prefix + ".qweight", new long[] {k, n / 8}, qweight);
        out.addInt32(prefix + ".qzeros", new long[] {groups, n / 8}, qzeros);
        out.addFloat16(prefix + ".scales", new long[] {groups, n}, scales);
    }

    public static WeightMatrix read(SafetensorsFile file, String prefix, Arena arena) {
        SafetensorsFile.Tensor qweight = GptqPacking.tensor(file, prefix + ".qweight", "I32");
        SafetensorsFile.Tensor qzeros = GptqPacking.tensor(file, prefix + ".qzeros", "I32");
        SafetensorsFile.Tensor scales = GptqPacking.tensor(file, prefix + ".scales", "F16");
        int k = (int) qweight.shape()[0];
        int n = (int) qweight.shape()[1] * 8;
        int groups = (int) scales.shape()[0];
        if (groups == 0 || k % groups != 0 || scales.shape()[1] != n || qzeros.shape()[0] != groups || qzeros.shape()[1] * 8 != n) {
            throw new ModelFormatException(file.source(), prefix + ": AWQ tensor shapes do not agree (qweight "
                    + qweight.shapeString() + ", qzeros " + qzeros.shapeString() + ", scales " + scales.shapeString() + ")");
        }
        LatheFormat format = LatheFormat.intGroup(4, k / groups, true);
        long rowBytes = format.rowBytes(k);
        MemorySegment data = arena.allocate(rowBytes * n, 8);
        byte[] levels = new byte[k];
        Grid[] grids = new Grid[groups];
        for (int row = 0; row < n; row++) {
            int word = row / 8;
            int shift = 4 * indexOf(row % 8);
            for (int i = 0; i < k; i++) {
                levels[i] = (byte) ((qweight.data().getAtIndex(GptqPacking.I32, (long) i * (n / 8) + word) >>> shift) & 0xF);
            }
            for (int b = 0; b < groups; b++) {
                int zero = (qzeros.data().getAtIndex(GptqPacking.I32, (long) b * (n / 8) + word) >>> shift) & 0xF;
                grids[b] = new Grid(Float.float16ToFloat(scales.data().getAtIndex(GptqPacking.F16, (long) b * n + row)), zero, 15);
            }
            LatheEncoder.packIntGroupRow(format, levels, grids, k, data, row * rowBytes);
        }
        return WeightMatrices.of(prefix + ".weight", (WeightFormat) format, n, k, data);
    }

    private static int indexOf(int output) {
        for (int i = 0; i < 8; i++) {
            if (ORDER[i] == output) {
                return i;
            }
        }
        throw new AssertionError(output);
    }
}
