package dev.lathe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lathe.core.format.SyntheticModel;
import dev.lathe.core.tensor.GgmlType;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code --kv-dtype} on generate, batch, bench, serve and eval ppl: f16 and int8 run; a bad value is one line naming the choices, exit 2. */
class KvDtypeOptionTest {

    private static int run(StringWriter out, StringWriter err, String... args) {
        CommandLine cli = Lathe.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void badValuesAreRefusedByEveryCommand(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("m.gguf");
        new SyntheticModel(64, 2, 4, 2, 96, 300, 128, GgmlType.F32, 3).write(model);
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"id\": \"a\", \"prompt\": \"hi\"}\n");
        List<String[]> commands = List.of(
                new String[] {"generate", "-m", model.toString(), "-p", "hi", "-n", "2"},
                new String[] {"batch", "-m", model.toString(), "--input", input.toString(), "--output", dir.resolve("out.jsonl").toString()},
                new String[] {"bench", "-m", model.toString(), "--prompt-tokens", "4", "--gen-tokens", "2", "--repeat", "1", "--no-bandwidth"},
                new String[] {"serve", "-m", model.toString(), "--port", "0"},
                new String[] {"eval", "ppl", "-m", model.toString(), "--text", input.toString()});
        for (String[] command : commands) {
            List<String> args = new ArrayList<>(List.of(command));
            args.add("--kv-dtype");
            args.add("fp8");
            StringWriter err = new StringWriter();
            assertEquals(2, run(new StringWriter(), err, args.toArray(String[]::new)), command[0] + ": " + err);
            assertTrue(err.toString().startsWith("lathe: ") && err.toString().contains("--kv-dtype: 'fp8'")
                    && err.toString().contains("f32, f16, bf16 or int8"), command[0] + ": " + err);
        }
    }

    @Test
    void f16AndInt8KvRunGenerate(@TempDir Path dir) {
        Path model = dir.resolve("m.gguf");
        new SyntheticModel(64, 2, 4, 2, 96, 300, 128, GgmlType.F32, 3).write(model);
        for (String dtype : new String[] {"f16", "int8"}) {
            StringWriter err = new StringWriter();
            assertEquals(0, run(new StringWriter(), err, "generate", "-m", model.toString(), "-p", "hi", "-n", "4",
                    "--temperature", "0", "--kv-dtype", dtype, "-t", "1"), dtype + ": " + err);
        }
    }
}
