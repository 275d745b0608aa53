package dev.lathe.cuda;

import static org.junit.platform.engine.discovery.ClassNameFilter.includeClassNamePatterns;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.io.PrintWriter;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TagFilter;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Runs every {@code @Tag("gpu")} test under {@code dev.lathe} without Maven, for the GPU machine
 * (which has a JDK image carried by bench/gpu/prepare.sh, but no Maven or registry). Prints the
 * summary and a closing "N passed, N failed" line; exits non-zero when anything failed.
 * An argument, if given, is a regular expression the test classes' full names must match
 * (bench/gpu/run.sh reruns the flash prefill classes with its switch on).
 */
public final class GpuSuite {
    private GpuSuite() {
    }

    public static void main(String[] args) {
        LauncherDiscoveryRequestBuilder builder = LauncherDiscoveryRequestBuilder.request()
                .selectors(selectPackage("dev.lathe"))
                .filters(TagFilter.includeTags("gpu"));
        if (args.length > 0) {
            builder.filters(includeClassNamePatterns(args[0]));
        }
        LauncherDiscoveryRequest request = builder.build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        launcher.execute(request, listener);
        TestExecutionSummary summary = listener.getSummary();
        PrintWriter out = new PrintWriter(System.out, true);
        summary.printFailuresTo(out, 40);
        summary.printTo(out);
        long failed = summary.getTotalFailureCount();
        out.println("gpu suite: " + summary.getTestsSucceededCount() + " passed, " + failed + " failed");
        System.exit(failed == 0 && summary.getTestsFoundCount() > 0 ? 0 : 1);
    }
}
