package dev.lathe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.tensor.GgmlType;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code lathe prune} from the command line: a run, and bad options ending in one line and exit code 2. */
class PruneCommandTest {

    private static int run(StringWriter err, String... args) {
        CommandLine cli = Lathe.commandLine();
        cli.setOut(new PrintWriter(new StringWriter()));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void prunesAndRejectsBadOptions(@TempDir Path dir) {
        Path model = dir.resolve("m.gguf");
        new SyntheticModel(64, 2, 4, 2, 96, 300, 128, GgmlType.F32, 3).write(model);
        Path out = dir.resolve("m-24.gguf");
        StringWriter err = new StringWriter();
        assertEquals(0, run(err, "prune", "-m", model.toString(), "-o", out.toString(), "--method", "magnitude", "--pattern", "2:4"), err.toString());
        assertTrue(Files.exists(out));

        String[][] bad = {
            {"--sparsity", "1.5"},
            {"--sparsity", "0"},
            {"--pattern", "2:3:4"},
            {"--drop-layers", "2", "--calib", model.toString()},
            {"--sparsity", "0.5", "--pattern", "2:4"},
        };
        for (String[] options : bad) {
            StringWriter e = new StringWriter();
            String[] args = new String[6 + options.length];
            System.arraycopy(new String[] {"prune", "-m", model.toString(), "-o", dir.resolve("x.gguf").toString(), "--force"}, 0, args, 0, 6);
            System.arraycopy(options, 0, args, 6, options.length);
            assertEquals(2, run(e, args), String.join(" ", options) + ": " + e);
            assertTrue(e.toString().startsWith("lathe: "), e.toString());
        }
    }
}
