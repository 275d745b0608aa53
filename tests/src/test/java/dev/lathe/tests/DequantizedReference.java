package dev.lathe.tests;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.tensor.GgmlType;
import dev.lathe.core.tensor.WeightMatrices;
import dev.lathe.core.tensor.WeightMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.SequencedMap;

/** The plain reference of a quantized model: every tensor dequantized to F32 (off-heap), same config and vocabulary. */
final class DequantizedReference {
    private DequantizedReference() {
    }

    static LoadedModel of(LoadedModel quantized) {
        Arena arena = Arena.ofShared();
        SequencedMap<String, WeightMatrix> tensors = new LinkedHashMap<>();
        for (WeightMatrix w : quantized.tensors().values()) {
            MemorySegment f32 = arena.allocate((long) w.rows() * w.cols() * Float.BYTES, 64);
            float[] row = new float[w.cols()];
            for (int r = 0; r < w.rows(); r++) {
                w.dequantizeRow(r, row, 0);
                MemorySegment.copy(row, 0, f32, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) r * w.cols() * Float.BYTES, w.cols());
            }
            tensors.put(w.name(), WeightMatrices.of(w.name(), GgmlType.F32, w.rows(), w.cols(), f32));
        }
        return new LoadedModel(quantized.source() + " (dequantized to F32)", quantized.format(), quantized.config(),
                tensors, quantized.vocabulary(), quantized.metadata(), arena);
    }
}
