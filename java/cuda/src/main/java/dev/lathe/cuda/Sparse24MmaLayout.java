package dev.lathe.cuda;

/**
 * The 2:4 weight reordered for the sparse tensor cores (kernels/sparse/sparse24_mma.cuh): the
 * kept halves in the A-fragment order of {@code mma.sp.m16n8k32} (for 16-bit types the dense
 * m16n8k16 fragment over the compressed 16 x 16 tile) and the metadata in the per-lane order of
 * sparsity selector 0, so that each warp reads one 16-byte fragment and one metadata word per lane.
 * Rows are padded to a multiple of 16 with zero weights.
 *
 * <p>PTX ISA ("Sparse matrix storage", "Matrix fragments for sparse mma.m16n8k32 with .f16/.bf16"):
 * lane {@code 4g + t} holds rows {@code g} and {@code g + 8}; its A registers are kept halves
 * {@code 2t, 2t+1} then {@code 2t+8, 2t+9} of each of those rows; with selector 0 the metadata of
 * the two rows comes from lanes {@code t = 0} (columns 0-15 of the chunk) and {@code t = 1}
 * (columns 16-31), row {@code g} in bits 0-15 and row {@code g + 8} in bits 16-31, two bits per
 * kept value in order. Equal indices in a group (0b0000, 0b0101, 0b1010, 0b1111) are undefined on
 * the hardware; a group that names one column twice is rewritten to two distinct columns with the
 * extra one's value zero, which multiplies to the same product.
 *
 * @param fragments {@code [rowTiles, cols/32, 32 lanes, 4]} pairs of f16 bits, low half first
 * @param meta      {@code [rowTiles, cols/32, 16]}: word {@code 2g + t}
 */
record Sparse24MmaLayout(int rows, int cols, int[] fragments, int[] meta) {
    static final int TILE_ROWS = 16;
    static final int CHUNK = 32;

    static int rowTiles(int rows) {
        return (rows + TILE_ROWS - 1) / TILE_ROWS;
    }

    /** Reorders {@code w} (the GEMV layout); cols must be a multiple of 64 for the kernel, 32 here. */
    static Sparse24MmaLayout of(Sparse24Weights w) {
        int rows = w.rows();
        int cols = w.cols();
        int chunks = cols / CHUNK;
        int tiles = rowTiles(rows);
        int[] fragments = new int[Math.multiplyExact(tiles * chunks, 128)];
        int[] meta = new int[Math.multiplyExact(tiles * chunks, 16)];
        short[] kept = new short[16];   // one row's kept halves over one chunk
        short[][] tile = new short[TILE_ROWS][];
        int[] rowMeta = new int[TILE_ROWS];
        for (int rt = 0; rt < tiles; rt++) {
            for (int c = 0; c < chunks; c++) {
                for (int i = 0; i < TILE_ROWS; i++) {
                    int r = rt * TILE_ROWS + i;
                    tile[i] = new short[16];
                    rowMeta[i] = r < rows ? chunkMeta(w, r, c, tile[i]) : 0x44444444; // padding: (0, 1), zeros
                }
                int base = (rt * chunks + c);
                for (int lane = 0; lane < 32; lane++) {
                    int g = lane >> 2;
                    int t = lane & 3;
                    int at = (base * 32 + lane) * 4;
                    fragments[at] = pair(tile[g], 2 * t);
                    fragments[at + 1] = pair(tile[g + 8], 2 * t);
                    fragments[at + 2] = pair(tile[g], 2 * t + 8);
                    fragments[at + 3] = pair(tile[g + 8], 2 * t + 8);
                }
                for (int g = 0; g < 8; g++) {
                    for (int t = 0; t < 2; t++) {
                        int low = (rowMeta[g] >>> (16 * t)) & 0xFFFF;
                        int high = (rowMeta[g + 8] >>> (16 * t)) & 0xFFFF;
                        meta[base * 16 + 2 * g + t] = low | high << 16;
                    }
                }
            }
        }
        return new Sparse24MmaLayout(rows, cols, fragments, meta);
    }

    private static int pair(short[] kept, int i) {
        return (kept[i] & 0xFFFF) | (kept[i + 1] & 0xFFFF) << 16;
    }

    /**
     * Row {@code r}'s metadata over chunk {@code c} (8 nibbles, group g at bits 4g..4g+3) with its
     * 16 kept halves into {@code kept}, every group's two indices distinct and ascending.
     */
    static int chunkMeta(Sparse24Weights w, int r, int c, short[] kept) {
        int word = w.meta()[r * (w.cols() / 32) + c];
        int out = 0;
        for (int g = 0; g < 8; g++) {
            int nibble = (word >>> (4 * g)) & 0xF;
            int first = nibble & 3;
            int second = nibble >>> 2;
            int at = r * (w.cols() / 2) + 16 * c + 2 * g;
            short v0 = w.values()[at];
            short v1 = w.values()[at + 1];
            if (first == second) {
                // Sparse24Weights.value reads only the first value there; its partner column gets 0.
                int other = first == 0 ? 1 : 0;
                v1 = 0;
                if (other < first) {
                    second = first;
                    first = other;
                    v1 = v0;
                    v0 = 0;
                } else {
                    second = other;
                }
            } else if (first > second) {
                int tmp = first;
                first = second;
                second = tmp;
                short tv = v0;
                v0 = v1;
                v1 = tv;
            }
            kept[2 * g] = v0;
            kept[2 * g + 1] = v1;
            out |= (first | second << 2) << (4 * g);
        }
        return out;
    }
}
