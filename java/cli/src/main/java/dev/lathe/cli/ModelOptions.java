package dev.lathe.cli;

import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The options every command that runs a model shares. */
final class ModelOptions {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL",
            description = "A GGUF file, a Hugging Face model directory, or a llama2.c checkpoint.")
    Path model;

    @Option(names = {"-z", "--tokenizer"}, paramLabel = "TOKENIZER",
            description = "Tokenizer to use instead of the model's own: llama2.c tokenizer.bin, tokenizer.json, or GGUF.")
    Path tokenizer;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "CPU threads (default: all cores, ${DEFAULT-VALUE}).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--backend", paramLabel = "NAME", description = "cpu (default), cuda, or auto (cuda when it starts, else cpu; says which).")
    String backend = "cpu";
}
