package dev.lathe.cli;

import dev.lathe.core.backend.BackendUnavailableException;
import dev.lathe.core.io.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;

/** The {@code lathe} command. */
@Command(name = "lathe", mixinStandardHelpOptions = true, version = "lathe 0.1.0",
        description = "LLM inference on the JVM: run, inspect, benchmark, quantize, prune, evaluate and serve Llama-family models.",
        // One command per line, so branches that add commands merge cleanly.
        subcommands = {
                DemoCommand.class,
                GenerateCommand.class,
                BatchCommand.class,
                BenchCommand.class,
                InspectCommand.class,
                QuantizeCommand.class,
                PruneCommand.class,
                EvalCommand.class,
                ServeCommand.class,
                SyntheticCommand.class,
                TokenizeCommand.class,
                CommandLine.HelpCommand.class})
public final class Lathe implements Runnable {
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line (also used by tests to run commands in-process). */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Lathe());
        // NOTE: bad input (a corrupt model, an invalid option value) is the user's to fix: one line
        // naming the problem, exit code 2. Anything else is a bug and keeps its stack trace.
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof ModelFormatException || e instanceof IllegalArgumentException
                    || e instanceof UncheckedIOException || e instanceof NoSuchFileException
                    || e instanceof BackendUnavailableException) {
                commandLine.getErr().println("lathe: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        cli.setCaseInsensitiveEnumValuesAllowed(true);
        return cli;
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }
}
