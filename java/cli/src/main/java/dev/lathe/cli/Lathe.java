package dev.lathe.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code lathe} command. */
@Command(name = "lathe", mixinStandardHelpOptions = true, version = "lathe 0.1.0",
        description = "LLM inference on the JVM.",
        subcommands = {CommandLine.HelpCommand.class})
public final class Lathe implements Runnable {
    public static void main(String[] args) {
        System.exit(new CommandLine(new Lathe()).execute(args));
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }
}
