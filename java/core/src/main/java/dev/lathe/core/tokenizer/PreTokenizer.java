package dev.lathe.core.tokenizer;

import dev.lathe.core.io.ModelFormatException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Splits text into words before byte-level BPE, so merges never cross a word boundary. A
 * pre-tokenizer is a list of regexes applied in turn: the first splits the text into its matches
 * and the runs between them (both kept, HF's "Isolated" behaviour), each later regex splits
 * every piece the previous one produced. This is how llama.cpp runs a tokenizer.ggml.pre type
 * and how Hugging Face runs a Sequence of Split pre-tokenizers.
 */
public final class PreTokenizer {

    // NOTE: \s must mean Unicode White_Space (as in HF's onig and llama.cpp's tables), so every
    // pattern is compiled with UNICODE_CHARACTER_CLASS; Java's default \s is ASCII only.
    private static final int FLAGS = Pattern.UNICODE_CHARACTER_CLASS;

    /** GPT-2's split as llama.cpp writes it: a trailing whitespace run is left as a gap. */
    static final String GPT2 =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    /** GPT-2's split as HF's ByteLevel(use_regex) writes it, with the final {@code \s+}. */
    static final String GPT2_BYTE_LEVEL = GPT2 + "|\\s+";
    // NOTE: HF writes (?i:'s|'t|...); with Unicode case folding that would also take U+017F
    // (long s) for 's', so the ASCII case pairs are spelled out, as llama.cpp does.
    private static final String CONTRACTIONS_ANY_CASE = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    private static final String LLAMA3 =
            CONTRACTIONS_ANY_CASE + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String QWEN2 =
            CONTRACTIONS_ANY_CASE + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String UPPER_THEN_LOWER = "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]";
    private static final String LOWER = "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]";
    /** Mistral's tekken: a word is an optional capitalised run then lower case ("HelloWorld" is two). */
    private static final String TEKKEN =
            "[^\\r\\n\\p{L}\\p{N}]?" + UPPER_THEN_LOWER + "*" + LOWER + "+"
                    + "|[^\\r\\n\\p{L}\\p{N}]?" + UPPER_THEN_LOWER + "+" + LOWER + "*"
                    + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** GPT-4o (o200k): tekken's words with contractions attached, digits in threes. */
    private static final String GPT4O =
            "[^\\r\\n\\p{L}\\p{N}]?" + UPPER_THEN_LOWER + "*" + LOWER + "+" + CONTRACTIONS_ANY_CASE + "?"
                    + "|[^\\r\\n\\p{L}\\p{N}]?" + UPPER_THEN_LOWER + "+" + LOWER + "*" + CONTRACTIONS_ANY_CASE + "?"
                    + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    // NOTE: non-ASCII ranges are written as code points: as literals, editors and tools that
    // NFC-normalise text turn some of them (U+1F7D, U+2126, U+212A, ...) into other characters.
    private static final String CJK_BLOCKS = "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";
    private static final String DEEPSEEK_PUNCTUATION =
            "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+";
    /** Cased letters, as llama.cpp's deepseek-llm list spells them out. */
    private static final String DEEPSEEK_LATIN_LETTERS = "\\s?["
            + "\\x{0041}-\\x{005A}\\x{0061}-\\x{007A}\\x{00B5}\\x{00C0}-\\x{00D6}"
            + "\\x{00D8}-\\x{00F6}\\x{00F8}-\\x{01BA}\\x{01BC}-\\x{01BF}\\x{01C4}-\\x{0293}"
            + "\\x{0295}-\\x{02AF}\\x{0370}-\\x{0373}\\x{0376}-\\x{0377}\\x{037B}-\\x{037D}"
            + "\\x{037F}\\x{0386}\\x{0388}-\\x{038A}\\x{038C}\\x{038E}-\\x{03A1}"
            + "\\x{03A3}-\\x{03F5}\\x{03F7}-\\x{0481}\\x{048A}-\\x{052F}\\x{0531}-\\x{0556}"
            + "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"
            + "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
            + "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}"
            + "\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
            + "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
            + "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"
            + "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}"
            + "\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"
            + "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}"
            + "\\x{2183}-\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
            + "\\x{2CF2}-\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
            + "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
            + "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
            + "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"
            + "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
            + "]+";

    /**
     * The regex lists of the tokenizer.ggml.pre names Lathe knows, after llama.cpp's
     * llm_tokenizer_bpe (the patterns are the published HF definitions of each family).
     */
    private static final Map<String, List<String>> BY_NAME = Map.ofEntries(
            // NOTE: "default" is what llama.cpp applies to gpt2-model GGUFs written before
            // tokenizer.ggml.pre existed; it is not GPT-2's own split ("gpt-2").
            Map.entry("default", List.of("[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]")),
            Map.entry("gpt-2", List.of(GPT2)),
            Map.entry("mpt", List.of(GPT2)),
            Map.entry("olmo", List.of(GPT2)),
            Map.entry("jais", List.of(GPT2)),
            Map.entry("llama-bpe", List.of(LLAMA3)),
            Map.entry("llama3", List.of(LLAMA3)),
            Map.entry("llama-v3", List.of(LLAMA3)),
            Map.entry("falcon3", List.of(LLAMA3)),
            Map.entry("pixtral", List.of(LLAMA3)),
            Map.entry("chatglm-bpe", List.of(LLAMA3)),
            // NOTE: tekken and gpt-4o use HF's own patterns; Java has the \p{Lu}-style classes
            // that llama.cpp has to approximate with lookaheads.
            Map.entry("tekken", List.of(TEKKEN)),
            Map.entry("gpt-4o", List.of(GPT4O)),
            Map.entry("dbrx", List.of(LLAMA3)),
            Map.entry("smaug-bpe", List.of(LLAMA3)),
            Map.entry("qwen2", List.of(QWEN2)),
            Map.entry("stablelm2", List.of(QWEN2)),
            Map.entry("deepseek-llm", List.of("[\\r\\n]", DEEPSEEK_LATIN_LETTERS,
                    DEEPSEEK_PUNCTUATION, "\\s+$", CJK_BLOCKS, "\\p{N}+")),
            Map.entry("deepseek-coder", List.of("[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK_BLOCKS, "\\p{N}")),
            Map.entry("falcon", List.of("[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]")),
            Map.entry("starcoder", List.of("\\p{N}", GPT2)),
            Map.entry("refact", List.of("\\p{N}", GPT2)),
            Map.entry("command-r", List.of("\\p{N}", GPT2)),
            Map.entry("smollm", List.of("\\p{N}", GPT2)),
            Map.entry("codeshell", List.of("\\p{N}", GPT2)),
            Map.entry("exaone", List.of("\\p{N}", GPT2)));

    /** The tokenizer.ggml.pre names {@link #forName} accepts. */
    public static Set<String> knownNames() {
        return BY_NAME.keySet();
    }

    /** Pre-tokenizer names that also set llama.cpp's ignore_merges (a word that is a token stays whole). */
    static boolean ignoresMerges(String name) {
        return name != null && switch (name) {
            case "llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral", "tekken" -> true;
            default -> false;
        };
    }

    private final String name;
    private final List<Pattern> patterns;

    private PreTokenizer(String name, List<Pattern> patterns) {
        this.name = name;
        this.patterns = patterns;
    }

    /** The pre-tokenizer of a tokenizer.ggml.pre name; unknown names are an error naming {@code source}. */
    public static PreTokenizer forName(String name, String source) {
        List<String> regexes = BY_NAME.get(name);
        if (regexes == null) {
            throw new ModelFormatException(source, "unknown pre-tokenizer '" + name + "' (tokenizer.ggml.pre); known: "
                    + BY_NAME.keySet().stream().sorted().toList());
        }
        return ofRegexes(name, regexes, source);
    }

    /** A pre-tokenizer from explicit regexes (a tokenizer.json Split sequence). */
    public static PreTokenizer ofRegexes(String name, List<String> regexes, String source) {
        List<Pattern> compiled = new ArrayList<>(regexes.size());
        for (String regex : regexes) {
            try {
                compiled.add(Pattern.compile(regex, FLAGS));
            } catch (PatternSyntaxException e) {
                throw new ModelFormatException(source, "pre-tokenizer regex does not compile in Java: " + regex, e);
            }
        }
        return new PreTokenizer(name, List.copyOf(compiled));
    }

    public String name() {
        return name;
    }

    /** The words of {@code text}, in order; concatenated they give back {@code text}. */
    public List<String> split(String text) {
        List<String> pieces = List.of(text);
        for (Pattern pattern : patterns) {
            List<String> next = new ArrayList<>();
            for (String piece : pieces) {
                splitOne(pattern, piece, next);
            }
            pieces = next;
        }
        return pieces;
    }

    private static void splitOne(Pattern pattern, String piece, List<String> out) {
        Matcher m = pattern.matcher(piece);
        int last = 0;
        while (m.find()) {
            if (m.end() == m.start()) {
                continue; // NOTE: an empty match splits nothing (llama.cpp drops them too)
            }
            if (m.start() > last) {
                out.add(piece.substring(last, m.start()));
            }
            out.add(m.group());
            last = m.end();
        }
        if (last < piece.length()) {
            out.add(piece.substring(last));
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
