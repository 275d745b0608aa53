package dev.lathe.core.tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The vector shapes the CPU kernels share and the few in-register conversions they all use:
 * bytes to floats, nibble unpacking, f16 and bf16 bits to floats. Every species here has the
 * same lane count {@link #LANES}, so one byte (or short) load becomes exactly one float vector.
 */
final class BlockLanes {
    private BlockLanes() {
    }

    // NOTE: LANES is 16 (AVX-512) or 8 (AVX2, and the fallback): CpuVectorWidth decides. The block
    // kernels walk a block's 16- and 32-value halves in steps of LANES, so LANES must divide 16;
    // and a byte vector of LANES lanes needs LANES >= 8 (there is no 32-bit vector shape).
    static final VectorSpecies<Float> FLOATS = CpuVectorWidth.FLOATS;
    static final int LANES = FLOATS.length();
    static final VectorSpecies<Integer> INTS = IntVector.SPECIES_512.length() == LANES
            ? IntVector.SPECIES_512 : IntVector.SPECIES_256;
    static final VectorSpecies<Byte> BYTES = VectorSpecies.of(byte.class, VectorShape.forBitSize(LANES * Byte.SIZE));
    static final VectorSpecies<Short> SHORTS = VectorSpecies.of(short.class, VectorShape.forBitSize(LANES * Short.SIZE));

    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** 2^112: rebases an f16 exponent (bias 15) shifted into f32 position onto the f32 bias 127. */
    private static final float F16_EXPONENT_REBASE = 0x1p112f;

    /** {@link #LANES} bytes at {@code offset}. */
    static ByteVector loadBytes(MemorySegment data, long offset) {
        return ByteVector.fromMemorySegment(BYTES, data, offset, LE);
    }

    /** {@link #LANES} little-endian 16-bit values at {@code offset}. */
    static ShortVector loadShorts(MemorySegment data, long offset) {
        return ShortVector.fromMemorySegment(SHORTS, data, offset, LE);
    }

    /** {@link #LANES} 16-bit values of {@code data} from {@code index}. */
    static ShortVector loadShorts(short[] data, int index) {
        return ShortVector.fromArray(SHORTS, data, index);
    }

    /** Signed bytes to floats, lane for lane. */
    static FloatVector toFloats(ByteVector bytes) {
        return (FloatVector) bytes.convertShape(VectorOperators.B2F, FLOATS, 0);
    }

    /** The low 4 bits of each byte, 0..15. */
    static ByteVector lowNibbles(ByteVector packed) {
        return packed.and((byte) 0x0F);
    }

    /** The high 4 bits of each byte, 0..15. */
    static ByteVector highNibbles(ByteVector packed) {
        return shiftWithinShorts(packed, VectorOperators.LSHR, 4).and((byte) 0x0F);
    }

    /**
     * The bytes shifted as 16-bit lanes: bits cross into the neighbouring byte, so the caller
     * must mask them off (every caller keeps only bits that stayed within their byte).
     */
    // NOTE: x86 has no byte-lane shift; a ByteVector shift compiles to widen, shift, narrow.
    // One 16-bit shift plus the mask the caller applies anyway took Q4_0's dot from about 6.5 to
    // 10 Gvalues/s (bench KernelThroughput, one thread).
    static ByteVector shiftWithinShorts(ByteVector bytes, VectorOperators.Binary shift, int bits) {
        return bytes.reinterpretAsShorts().lanewise(shift, bits).reinterpretAsBytes();
    }

    /**
     * A mask with lane {@code i} set when bit {@code i} of {@code bits} is (the Q5 formats keep
     * each value's fifth bit in a bit field).
     */
    static VectorMask<Byte> bitMask(long bits) {
        return VectorMask.fromLong(BYTES, bits & ((1L << LANES) - 1));
    }

    /**
     * IEEE half-precision bits to floats, in registers: the 15 magnitude bits shifted into f32
     * position are a float 2^-112 times too small (exponent bias 15 vs 127); one multiply fixes
     * that for normals and subnormals alike. Inf and NaN (exponent all ones) get the f32 all-ones
     * exponent. The widening sign-extends, so bit 31 already is the sign.
     *
     * <p>Variants: (1) sign isolated and shifted from bit 15: F16 dot 6.1 Gvalues/s; (2, this)
     * sign taken from the sign-extended bit 31: 9.1 Gvalues/s (bench KernelThroughput, one thread,
     * in cache); (3) as 2 without the inf/NaN fix-up: about 12 Gvalues/s, but an inf or NaN weight
     * would then decode as a finite number, unlike the reference. 2 is kept: at 9 Gvalues/s
     * (18 GB/s of f16) one thread already outruns its share of memory bandwidth.
     */
    static FloatVector halvesToFloats(ShortVector halves) {
        IntVector bits = (IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0);
        IntVector magnitude = bits.and(0x7FFF);
        IntVector scaled = magnitude.lanewise(VectorOperators.LSHL, 13)
                .reinterpretAsFloats().mul(F16_EXPONENT_REBASE).reinterpretAsInts();
        VectorMask<Integer> infOrNan = magnitude.compare(VectorOperators.GE, 0x7C00);
        return scaled.or(bits.and(0x80000000)).lanewise(VectorOperators.OR, 0x7F800000, infOrNan).reinterpretAsFloats();
    }

    /** bfloat16 bits to floats: they are the high half of an f32. */
    static FloatVector bf16ToFloats(ShortVector halves) {
        IntVector bits = (IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0);
        return bits.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }
}
