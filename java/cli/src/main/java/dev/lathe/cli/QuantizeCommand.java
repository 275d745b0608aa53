package dev.lathe.cli;

import dev.lathe.tools.hf.HfExporter;
import dev.lathe.tools.quant.ModelQuantizer;
import dev.lathe.tools.quant.QuantMethod;
import dev.lathe.tools.quant.QuantOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code lathe quantize}: writes a quantized copy of a model, as GGUF or as a Hugging Face directory. */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Quantize a GGUF model: GGUF types (q8_0, q4_0, q4_k, q5_k, q6_k, and llama.cpp's mixes q4_k_m, q5_k_m) by ggml's reference algorithms, or",
            "Lathe's formats: rtn (INT8 per channel with --bits 8, else INT2/3/4 group-wise), nf4, gptq, awq.",
            "Norms stay F32; token_embd/output and matrices whose K is not a whole number of groups go to 8 bits.",
            "--output-format hf writes a Hugging Face directory instead (any input Lathe reads): gptq and rtn (2/4 bits)",
            "as GPTQ, awq as AWQ gemm, nf4 as bitsandbytes NF4, with config.json quantization_config and the tokenizer."})
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "IN", description = "The GGUF model to quantize.")
    Path input;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT",
            description = "The GGUF file to write (--output-format hf: the directory).")
    Path output;

    @Option(names = "--output-format", paramLabel = "FORMAT", description = "gguf (the default) or hf (a Hugging Face directory).")
    String outputFormat = "gguf";

    @Option(names = {"-z", "--tokenizer"}, paramLabel = "FILE",
            description = "--output-format hf: the tokenizer to write when the input carries none (a llama2.c tokenizer.bin, ...).")
    Path tokenizer;

    @Option(names = "--method", required = true, paramLabel = "METHOD",
            description = "rtn, q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m, q5_k_m, nf4, gptq or awq.")
    QuantMethod method;

    @Option(names = "--bits", paramLabel = "B", description = "rtn: 2, 3, 4 or 8; gptq/awq: 2, 3 or 4 (default ${DEFAULT-VALUE}).")
    int bits = 4;

    @Option(names = "--group-size", paramLabel = "G", description = "Values per group along K: 32, 64, 128 (default 32; nf4: 64).")
    Integer groupSize;

    @Option(names = "--sym", description = "Symmetric levels (no zero point).")
    boolean symmetric;

    @Option(names = "--zero-point", description = "Asymmetric levels with a zero point per group (the default).")
    boolean zeroPoint;

    @Option(names = "--calib", paramLabel = "FILE", description = "Calibration text (gptq, awq).")
    Path calibration;

    @Option(names = "--calib-samples", paramLabel = "N", description = "Calibration windows (default ${DEFAULT-VALUE}).")
    int calibSamples = 32;

    @Option(names = "--seq-len", paramLabel = "L", description = "Tokens per calibration window (default ${DEFAULT-VALUE}).")
    int seqLen = 128;

    @Option(names = "--act-order", description = "gptq: quantize columns by decreasing activation (Hessian diagonal).")
    boolean actOrder;

    @Option(names = "--double-quant", description = "nf4: quantize the per-group absmax values again (QLoRA double quantization: "
            + "8-bit codes, an f32 scale per 256 groups, one f32 offset).")
    boolean doubleQuant;

    @Option(names = "--mixed", paramLabel = "MODE", description = "Which tensors get more bits: rule (the default: embedding,"
            + " head and matrices whose K is no whole number of groups go to 8 bits) or sensitivity (also the linears whose"
            + " measured output error on --calib text drops most per extra bit go to INT8, within --bpw-budget; rtn and nf4).")
    String mixed = "rule";

    @Option(names = "--bpw-budget", paramLabel = "B", description = "--mixed sensitivity: bits per weight over the mixed linears.")
    Double bpwBudget;

    @Option(names = "--force", description = "Overwrite an existing output file.")
    boolean force;

    @Override
    public Integer call() {
        if (symmetric && zeroPoint) {
            throw new IllegalArgumentException("--sym and --zero-point contradict each other: pass one");
        }
        int group = groupSize != null ? groupSize : method == QuantMethod.NF4 ? 64 : 32;
        QuantOptions options = new QuantOptions(method, bits, group, !symmetric, calibration, calibSamples, seqLen, actOrder, doubleQuant);
        Double budget = switch (mixed) {
            case "rule" -> {
                if (bpwBudget != null) {
                    throw new IllegalArgumentException("--bpw-budget needs --mixed sensitivity");
                }
                yield null;
            }
            case "sensitivity" -> {
                if (bpwBudget == null) {
                    throw new IllegalArgumentException("--mixed sensitivity needs --bpw-budget B (bits per weight)");
                }
                yield bpwBudget;
            }
            default -> throw new IllegalArgumentException("--mixed is rule or sensitivity, not " + mixed);
        };
        if (outputFormat.equals("hf")) {
            ModelQuantizer.HfSummary s = ModelQuantizer.quantizeToHf(input, output, options, budget, tokenizer, force,
                    HfExporter.DEFAULT_SHARD_BYTES, System.err);
            System.out.printf("wrote %s: %.2f MB in %.1f s (%d linear layers packed, %d dense)%n", s.output(), s.bytes() / 1e6,
                    s.seconds(), s.export().packed().size(), s.export().dense().size());
            if (!s.export().dense().isEmpty()) {
                System.out.println("  dense (shape does not pack, or kept at 8 bits): " + s.export().dense());
            }
            System.out.println(switch (s.export().tokenizer()) {
                case "copied" -> "  tokenizer: copied from the input directory";
                case "written" -> "  tokenizer: tokenizer.json written from the model's vocabulary";
                default -> "  tokenizer: none written (no SentencePiece vocabulary to convert): run it with -z pointing at the original";
            });
            return 0;
        }
        if (!outputFormat.equals("gguf")) {
            throw new IllegalArgumentException("--output-format is gguf or hf, not " + outputFormat);
        }
        if (tokenizer != null) {
            throw new IllegalArgumentException("-z applies to --output-format hf (a GGUF output keeps the input's vocabulary)");
        }
        ModelQuantizer.Summary s = ModelQuantizer.quantize(input, output, options, budget, force, System.err);
        System.out.printf("wrote %s: %.2f MB in %.1f s%n", s.output(), s.bytes() / 1e6, s.seconds());
        s.tensorsByFormat().forEach((format, n) -> System.out.printf("  %-22s %d tensors%n", format, n));
        return 0;
    }
}
