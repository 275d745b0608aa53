package dev.lathe.bench;

import dev.lathe.core.tensor.GgmlType;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs {@link MatVecBenchmark} and {@link MatVecReadBandwidth} (any JMH options may be passed,
 * e.g. {@code -f 1 -wi 2 -i 3}) and prints effective bandwidth per format and thread count:
 * matrix bytes / time, and that as a share of the plain read bandwidth at the same thread count.
 */
public final class MatVecReport {
    private MatVecReport() {
    }

    public static void main(String[] args) throws Exception {
        CommandLineOptions cli = new CommandLineOptions(args);
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(MatVecBenchmark.class.getSimpleName())
                .include(MatVecReadBandwidth.class.getSimpleName())
                .build()).run();

        Map<Integer, Double> readGbPerS = new HashMap<>();
        for (RunResult r : results) {
            if (r.getParams().getBenchmark().contains(MatVecReadBandwidth.class.getSimpleName())) {
                int threads = Integer.parseInt(r.getParams().getParam("threads"));
                readGbPerS.put(threads, gbPerS(MatVecReadBandwidth.BYTES, r.getPrimaryResult().getScore()));
            }
        }
        System.out.println();
        System.out.printf("%-6s %7s %9s %10s %8s%n", "format", "threads", "MB", "GB/s", "% read");
        for (Map.Entry<Integer, Double> e : readGbPerS.entrySet()) {
            System.out.printf("%-6s %7d %9d %10.2f %8s%n", "read", e.getKey(), MatVecReadBandwidth.BYTES >> 20, e.getValue(), "100");
        }
        for (RunResult r : results) {
            if (!r.getParams().getBenchmark().contains(MatVecBenchmark.class.getSimpleName())) {
                continue;
            }
            GgmlType type = GgmlType.valueOf(r.getParams().getParam("format"));
            int threads = Integer.parseInt(r.getParams().getParam("threads"));
            long bytes = MatVecBenchmark.matrixBytes(type);
            double gb = gbPerS(bytes, r.getPrimaryResult().getScore());
            Double read = readGbPerS.get(threads);
            String share = read == null ? "-" : String.format("%.0f", 100 * gb / read);
            System.out.printf("%-6s %7d %9d %10.2f %8s%n", type, threads, bytes >> 20, gb, share);
        }
    }

    /** GB/s (10^9 bytes) from bytes per operation and a score in milliseconds per operation. */
    private static double gbPerS(long bytes, double millisPerOp) {
        return bytes / (millisPerOp * 1e-3) / 1e9;
    }
}
