package dev.lathe.cli;

import dev.lathe.core.format.LoadedModel;
import dev.lathe.core.format.ModelLoader;
import dev.lathe.core.format.TokenizerLoader;
import dev.lathe.core.model.LlamaConfig;
import dev.lathe.core.tensor.WeightMatrix;
import dev.lathe.core.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code lathe inspect}: what a model file holds. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show a model's architecture, hyper-parameters, tokenizer and tensors.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "A GGUF file, a Hugging Face directory, or a llama2.c checkpoint.")
    Path model;

    @Option(names = {"-z", "--tokenizer"}, paramLabel = "TOKENIZER", description = "Tokenizer to describe instead of the model's own.")
    Path tokenizer;

    @Option(names = "--metadata", description = "Also print every metadata key.")
    boolean metadata;

    @Override
    public Integer call() {
        try (LoadedModel m = ModelLoader.load(model)) {
            LlamaConfig c = m.config();
            System.out.printf("file          %s (%s)%n", m.source(), m.format());
            System.out.printf("architecture  %s%n", c.architecture());
            System.out.printf("dim %d, ffn %d, layers %d, heads %d, kv heads %d, head dim %d, vocab %d, context %d%n",
                    c.dim(), c.ffnDim(), c.layers(), c.heads(), c.kvHeads(), c.headDim(), c.vocabSize(), c.contextLength());
            System.out.printf("rms eps %g, rope theta %g (%s)%s%s, output head %s%n", c.rmsNormEps(), c.ropeTheta(), c.ropeStyle(),
                    c.ropeScaling() != null ? ", llama3 rope scaling x" + c.ropeScaling().factor() : "",
                    c.qkvBias() ? ", QKV bias" : "", c.tiedEmbeddings() ? "tied to the embedding" : "separate");
            describeTokenizer(m);
            if (metadata) {
                System.out.println("metadata");
                for (Map.Entry<String, Object> e : m.metadata().entrySet()) {
                    System.out.printf("  %-45s %s%n", e.getKey(), e.getValue());
                }
            }
            System.out.printf("tensors       %d, %.2f MB%n", m.tensors().size(), m.weightBytes() / 1e6);
            System.out.printf("  %-36s %-6s %-16s %12s%n", "name", "type", "shape", "bytes");
            for (WeightMatrix w : m.tensors().values()) {
                System.out.printf("  %-36s %-6s %-16s %,12d%n", w.name(), w.format().name(), "[" + w.rows() + ", " + w.cols() + "]", w.byteSize());
            }
        }
        return 0;
    }

    private void describeTokenizer(LoadedModel m) {
        if (tokenizer == null && m.vocabulary() == null) {
            System.out.println("tokenizer     none in the file (pass one with -z)");
            return;
        }
        Tokenizer t = TokenizerLoader.forModel(m, tokenizer);
        System.out.printf("tokenizer     %s, %d tokens%n", t.describe(), t.vocabSize());
        System.out.printf("special       BOS %s, EOS %s, stop ids %s%n", special(t, t.bosId()), special(t, t.eosId()),
                java.util.Arrays.toString(t.stopIds()));
    }

    private static String special(Tokenizer t, int id) {
        return id < 0 ? "none" : id + " " + t.piece(id);
    }
}
