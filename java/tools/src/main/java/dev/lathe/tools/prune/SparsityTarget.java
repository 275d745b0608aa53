package dev.lathe.tools.prune;

/**
 * How many weights of a row to prune: unstructured (a fraction {@code sparsity} of each output
 * row, the lowest scores of the row) or N:M (at most {@code n} non-zeros in each group of {@code m}
 * consecutive weights along a row, the {@code m - n} lowest scores of the group pruned).
 *
 * @param sparsity fraction of each row pruned, in (0, 1); for N:M it is {@code 1 - n/m}
 * @param n        N:M: weights kept per group (0 when unstructured)
 * @param m        N:M: group length (0 when unstructured)
 */
public record SparsityTarget(double sparsity, int n, int m) {

    public SparsityTarget {
        if (m == 0) {
            if (!(sparsity > 0 && sparsity < 1)) {
                throw new IllegalArgumentException("--sparsity must be in (0, 1), not " + sparsity);
            }
        } else if (n < 1 || n >= m || m > 64) {
            throw new IllegalArgumentException("--pattern " + n + ":" + m + " must keep N of every M with 1 <= N < M <= 64 (e.g. 2:4, 4:8)");
        }
    }

    public static SparsityTarget unstructured(double sparsity) {
        return new SparsityTarget(sparsity, 0, 0);
    }

    public static SparsityTarget pattern(int n, int m) {
        return new SparsityTarget(1 - (double) n / m, n, m);
    }

    /** {@code "N:M"} as on the command line. */
    public static SparsityTarget parsePattern(String spec) {
        String[] parts = spec.split(":");
        try {
            if (parts.length == 2) {
                return pattern(Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim()));
            }
        } catch (NumberFormatException e) {
            // falls through to the error below
        }
        throw new IllegalArgumentException("--pattern '" + spec + "' is not N:M (e.g. 2:4, 4:8)");
    }

    public boolean isPattern() {
        return m > 0;
    }

    /** True for 2:4, the pattern the compressed format and the sparse kernels store. */
    public boolean is24() {
        return n == 2 && m == 4;
    }

    /** Weights pruned among the first {@code cols} of an unstructured row: {@code round(cols * sparsity)}. */
    public int prunedUpTo(int cols) {
        return (int) Math.round(cols * sparsity);
    }

    /** Checks that a row of {@code cols} weights of tensor {@code name} can take this target. */
    public void checkRow(String name, int cols) {
        if (isPattern() && cols % m != 0) {
            throw new IllegalArgumentException("--pattern " + n + ":" + m + " does not divide the rows of " + name + " (" + cols
                    + " weights per row, not a multiple of " + m + ")");
        }
    }

    @Override
    public String toString() {
        return isPattern() ? n + ":" + m : Math.round(sparsity * 1000) / 10.0 + "%";
    }
}
