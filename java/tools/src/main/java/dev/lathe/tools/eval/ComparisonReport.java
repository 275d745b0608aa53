package dev.lathe.tools.eval;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** Writes a comparison as {@code compare.md}, {@code compare.csv} and {@code ppl_vs_size.png}. */
public final class ComparisonReport {
    public static final String MARKDOWN = "compare.md";
    public static final String CSV = "compare.csv";
    public static final String CHART = "ppl_vs_size.png";

    private ComparisonReport() {
    }

    public static void write(List<ModelComparison.Row> rows, Path dir, String title) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve(MARKDOWN), markdown(rows, title));
            Files.writeString(dir.resolve(CSV), csv(rows));
            chart(rows, title, dir.resolve(CHART));
        } catch (IOException e) {
            throw new UncheckedIOException("writing the report to " + dir, e);
        }
    }

    static String markdown(List<ModelComparison.Row> rows, String title) {
        StringBuilder s = new StringBuilder("## " + title + "\n\n");
        s.append("| model | method | format | bits/weight | size (MB) | perplexity | change | prefill tok/s | decode tok/s |\n");
        s.append("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (ModelComparison.Row r : rows) {
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %.2f | %.3f | %.4f | %+.2f%% | %.0f | %.0f |%n", r.label(), r.method(),
                    r.format(), r.bitsPerWeight(), r.fileBytes() / 1e6, r.perplexity(), r.changePercent(),
                    r.prefillTokensPerSecond(), r.decodeTokensPerSecond()));
        }
        return s.toString();
    }

    static String csv(List<ModelComparison.Row> rows) {
        StringBuilder s = new StringBuilder("model,method,format,bits_per_weight,size_bytes,perplexity,change_percent,"
                + "prefill_tokens_per_second,decode_tokens_per_second\n");
        for (ModelComparison.Row r : rows) {
            s.append(String.format(Locale.ROOT, "%s,%s,%s,%.4f,%d,%.6f,%.4f,%.2f,%.2f%n", quote(r.label()), quote(r.method()),
                    quote(r.format()), r.bitsPerWeight(), r.fileBytes(), r.perplexity(), r.changePercent(),
                    r.prefillTokensPerSecond(), r.decodeTokensPerSecond()));
        }
        return s.toString();
    }

    private static String quote(String v) {
        return v.contains(",") || v.contains("\"") ? "\"" + v.replace("\"", "\"\"") + "\"" : v;
    }

    static void chart(List<ModelComparison.Row> rows, String title, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(900).height(600).title(title)
                .xAxisTitle("file size (MB)").yAxisTitle("perplexity").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setMarkerSize(10);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
        // NOTE: log scale: a 2-bit row's perplexity can be 30x the base's and would flatten the rest.
        chart.getStyler().setYAxisLogarithmic(true);
        org.knowm.xchart.style.markers.Marker[] shapes = {SeriesMarkers.CIRCLE, SeriesMarkers.DIAMOND, SeriesMarkers.SQUARE,
            SeriesMarkers.TRIANGLE_UP, SeriesMarkers.TRIANGLE_DOWN};
        for (int i = 0; i < rows.size(); i++) {
            ModelComparison.Row r = rows.get(i);
            XYSeries series = chart.addSeries(r.label(), new double[] {r.fileBytes() / 1e6}, new double[] {r.perplexity()});
            series.setMarker(shapes[i % shapes.length]);
        }
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
