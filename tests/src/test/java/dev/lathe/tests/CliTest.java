package dev.lathe.tests;

import dev.lathe.cli.Lathe;
import dev.lathe.core.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The lathe command, run in-process: output, exit codes and error messages. */
class CliTest {
    private static final String DIR = "models/stories260K/";

    record Run(int exitCode, String out, String err) {
    }

    static synchronized Run lathe(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            var cli = Lathe.commandLine();
            cli.setOut(new java.io.PrintWriter(System.out, true));
            cli.setErr(new java.io.PrintWriter(System.err, true));
            int code = cli.execute(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void generatePrintIdsMatchesTheReference() throws IOException {
        Run run = lathe("generate", "-m", SharedData.require(DIR + "stories260K.bin").toString(),
                "-z", SharedData.require(DIR + "tok512.bin").toString(), "--temperature", "0", "-n", "256", "--print-ids",
                "--threads", "2");
        assertEquals(0, run.exitCode(), run.err());
        String expected = Files.readString(SharedData.require(DIR + "reference/stories260K_greedy_n256.ids.txt")).trim();
        assertEquals(expected, run.out().trim());
        assertTrue(run.err().contains("tokens/s"), run.err());
    }

    @Test
    void generateStreamsText() throws IOException {
        Run run = lathe("generate", "-m", SharedData.require(DIR + "stories260K-f32.gguf").toString(),
                "-p", "Once upon a time", "--temperature", "0", "-n", "20");
        assertEquals(0, run.exitCode(), run.err());
        String expected = Files.readString(SharedData.require(DIR + "reference/stories260K_greedy_prompt_OnceUponATime_n64.txt"));
        assertTrue(expected.startsWith("Once upon a time" + run.out().stripTrailing()), run.out());
    }

    @Test
    void tokenizePrintsIdsOnOneLine() {
        Run run = lathe("tokenize", "-z", SharedData.require(DIR + "tok512.bin").toString(), "--no-bos", "--text", "Hello world");
        assertEquals(0, run.exitCode(), run.err());
        assertEquals("346 306 414 263 304 341", run.out().trim());
        run = lathe("tokenize", "-m", SharedData.require(DIR + "stories260K-q8_0.gguf").toString(), "--text", "Hello world");
        assertEquals("1 346 306 414 263 304 341", run.out().trim());
    }

    @Test
    void inspectShowsConfigTokenizerAndTensors() {
        Run run = lathe("inspect", SharedData.require(DIR + "stories260K-q4_0.gguf").toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("dim 64, ffn 172, layers 5, heads 8, kv heads 4"), run.out());
        assertTrue(run.out().contains("SentencePiece"), run.out());
        assertTrue(run.out().matches("(?s).*token_embd\\.weight\\s+Q4_0\\s+\\[512, 64\\]\\s+18,432.*"), run.out());
    }

    @Test
    void badInputIsOneLineAndExitCodeTwo(@TempDir Path tmp) throws IOException {
        Path junk = tmp.resolve("junk.gguf");
        Files.write(junk, new byte[] {'G', 'G', 'U', 'F', 9, 0, 0, 0});
        Run run = lathe("inspect", junk.toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().startsWith("lathe: " + junk), run.err());
        assertTrue(run.err().contains("GGUF"), run.err());

        run = lathe("generate", "-m", SharedData.require(DIR + "stories260K-f32.gguf").toString(), "--top-p", "1.5");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("topP"), run.err());

        // No silent fallback: without a usable GPU, asking for CUDA is an error that says why.
        run = lathe("generate", "-m", SharedData.require(DIR + "stories260K-f32.gguf").toString(), "--backend", "cuda", "-n", "4");
        if (run.exitCode() != 0) {
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains("lathe: the CUDA backend cannot start: "), run.err());
        }

        run = lathe("generate", "-m", SharedData.require(DIR + "stories260K-f32.gguf").toString(), "--backend", "tpu");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("backend 'tpu' is not available"), run.err());
    }

    @Test
    void speculativeGenerateEqualsPlainAndReportsStatistics() {
        String model = SharedData.require(DIR + "stories260K-f32.gguf").toString();
        Run plain = lathe("generate", "-m", model, "-p", "Once upon a time", "-n", "24", "--temperature", "0", "--print-ids");
        Run speculative = lathe("generate", "-m", model, "-p", "Once upon a time", "-n", "24", "--temperature", "0", "--print-ids",
                "--speculate", "self:3", "--draft-tokens", "3", "--compare");
        assertEquals(0, speculative.exitCode(), speculative.err());
        assertEquals(plain.out(), speculative.out());
        assertTrue(speculative.err().contains("speculation: self(3/5 layers), K=3"), speculative.err());
        assertTrue(speculative.err().contains("(identical output)"), speculative.err());
    }

    @Test
    void badSpeculationAndEarlyExitOptionsAreOneLineAndExitCodeTwo() {
        String model = SharedData.require(DIR + "stories260K-f32.gguf").toString();
        Run run = lathe("generate", "-m", model, "-n", "4", "--speculate", "self:9");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("self:9: the draft's layer count must be in [1, 4]"), run.err());
        run = lathe("generate", "-m", model, "-n", "4", "--speculate", "ngram", "--draft-tokens", "0");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--draft-tokens 0"), run.err());
        run = lathe("generate", "-m", model, "-n", "4", "--speculate", "eagle");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("expected draft:PATH, ngram or self:LAYERS"), run.err());
        run = lathe("generate", "-m", model, "-n", "4", "--early-exit", "0.9", "--early-exit-layers", "5");
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--early-exit-layers"), run.err());
        run = lathe("generate", "-m", model, "-n", "4", "--speculate", "draft:" + SharedData.require(DIR + "tok512.bin"));
        assertEquals(2, run.exitCode(), run.err());
    }

    @Test
    void benchPrintsSpeedsAndBound() {
        Run run = lathe("bench", "-m", SharedData.require(DIR + "stories260K-q8_0.gguf").toString(),
                "--prompt-tokens", "16", "--gen-tokens", "8", "--repeat", "2", "--no-bandwidth");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("prefill    16 tokens:"), run.out());
        assertTrue(run.out().contains("decode     8 tokens:"), run.out());
        assertTrue(run.out().contains("GB/s of weights read"), run.out());
    }
}
