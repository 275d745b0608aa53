package dev.lathe.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lathe serve} is registered and refuses bad options with one line and exit code 2, before loading anything. */
class ServeCommandTest {
    private static String[] run(String... args) {
        CommandLine cli = Lathe.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    @Test
    void helpListsTheOptions() {
        String[] result = run("serve", "--help");
        assertEquals("0", result[0]);
        for (String option : new String[] {"--host", "--port", "--backend", "--max-batch", "--kv-memory", "--api-key",
            "--served-model-name", "--max-queue", "--shutdown-grace"}) {
            assertTrue(result[1].contains(option), "help lacks " + option + ":\n" + result[1]);
        }
    }

    @Test
    void badOptionsAreOneLineErrors() {
        String[] port = run("serve", "-m", "missing.gguf", "--port", "70000");
        assertEquals("2", port[0]);
        assertTrue(port[2].contains("--port"), port[2]);
        String[] queue = run("serve", "-m", "missing.gguf", "--max-queue", "-1");
        assertEquals("2", queue[0]);
        assertTrue(queue[2].contains("--max-queue"), queue[2]);
        String[] memory = run("serve", "-m", "missing.gguf", "--kv-memory", "lots");
        assertEquals("2", memory[0]);
        assertTrue(memory[2].contains("--kv-memory"), memory[2]);
    }
}
