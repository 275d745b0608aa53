package dev.lathe.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Every function declared in lathe.h has a binding in {@link LatheNative} with the same C
 * signature (return and parameter types, so arity too), and every binding names a declared
 * function. Runs without a GPU and without the library.
 */
class HeaderBindingsTest {
    private static final Pattern DECLARATION = Pattern.compile(
            "LATHE_API\\s+([\\w\\s]+?\\**)\\s*(lathe_\\w+)\\s*\\(([^)]*)\\)\\s*;", Pattern.DOTALL);

    static Path header() {
        String configured = System.getProperty("lathe.header");
        Path path = configured != null ? Path.of(configured) : Path.of("../native/include/lathe.h");
        if (!Files.isRegularFile(path)) {
            fail("lathe.h not found at " + path.toAbsolutePath() + " (set -Dlathe.header)");
        }
        return path;
    }

    /** name -> descriptor, parsed from the header's declarations. */
    static Map<String, FunctionDescriptor> parse(String source) {
        String code = source.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ");
        Map<String, FunctionDescriptor> functions = new LinkedHashMap<>();
        Matcher m = DECLARATION.matcher(code);
        while (m.find()) {
            String name = m.group(2);
            MemoryLayout result = layout(m.group(1), name + " return type");
            List<MemoryLayout> args = new ArrayList<>();
            String params = m.group(3).trim();
            if (!params.equals("void") && !params.isEmpty()) {
                for (String param : params.split(",")) {
                    // Drop the parameter name: the type is everything before the last identifier.
                    String p = param.trim();
                    String type = p.replaceAll("\\s*\\b\\w+\\s*$", "");
                    args.add(layout(type, name + " parameter '" + p + "'"));
                }
            }
            if (functions.put(name, FunctionDescriptor.of(result, args.toArray(MemoryLayout[]::new))) != null) {
                fail("lathe.h declares " + name + " twice");
            }
        }
        return functions;
    }

    private static MemoryLayout layout(String cType, String where) {
        String t = cType.replace("const ", "").trim();
        if (t.endsWith("*")) {
            return ValueLayout.ADDRESS;
        }
        return switch (t) {
            case "int32_t" -> ValueLayout.JAVA_INT;
            case "int64_t" -> ValueLayout.JAVA_LONG;
            case "float" -> ValueLayout.JAVA_FLOAT;
            default -> throw new AssertionError(where + ": type '" + cType + "' is not allowed in lathe.h"
                    + " (only int32_t, int64_t, float and pointers)");
        };
    }

    private static String signature(FunctionDescriptor d) {
        StringBuilder s = new StringBuilder(d.returnLayout().map(HeaderBindingsTest::name).orElse("void")).append('(');
        for (int i = 0; i < d.argumentLayouts().size(); i++) {
            s.append(i > 0 ? ", " : "").append(name(d.argumentLayouts().get(i)));
        }
        return s.append(')').toString();
    }

    private static String name(MemoryLayout l) {
        if (l instanceof java.lang.foreign.AddressLayout) {
            return "pointer";
        }
        return ((ValueLayout) l).carrier().getSimpleName();
    }

    @Test
    void everyHeaderFunctionHasAMatchingBinding() throws IOException {
        Map<String, FunctionDescriptor> declared = parse(Files.readString(header()));
        assertFalse(declared.isEmpty(), "no LATHE_API declarations parsed from lathe.h");
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, FunctionDescriptor> e : declared.entrySet()) {
            FunctionDescriptor bound = LatheNative.FUNCTIONS.get(e.getKey());
            if (bound == null) {
                problems.add(e.getKey() + " is declared in lathe.h but has no binding in LatheNative");
            } else if (!signature(bound).equals(signature(e.getValue()))) {
                problems.add(e.getKey() + ": lathe.h says " + signature(e.getValue()) + ", LatheNative binds "
                        + signature(bound));
            }
        }
        for (String name : LatheNative.FUNCTIONS.keySet()) {
            if (!declared.containsKey(name)) {
                problems.add(name + " is bound in LatheNative but not declared in lathe.h");
            }
        }
        assertEquals(List.of(), problems);
    }

    @Test
    void bindingsNameTheHeadersAbiVersion() throws Exception {
        java.util.regex.Matcher m = Pattern.compile("#define\\s+LATHE_ABI_VERSION\\s+(\\d+)").matcher(Files.readString(header()));
        if (!m.find()) {
            fail("lathe.h defines no LATHE_ABI_VERSION");
        }
        assertEquals(Integer.parseInt(m.group(1)), LatheNative.ABI_VERSION, "LatheNative.ABI_VERSION must follow lathe.h");
    }

    @Test
    void parserReadsMultiLineDeclarationsAndRejectsStructsByValue() {
        Map<String, FunctionDescriptor> f = parse("""
                /* comment with LATHE_API int32_t lathe_fake(void); inside */
                LATHE_API const char* lathe_last_error(void);
                LATHE_API int32_t lathe_two(lathe_stream* s, // the stream
                                            const float* x, /* [n] */ int64_t n, float eps);
                """);
        assertEquals(List.of("lathe_last_error", "lathe_two"), List.copyOf(f.keySet()));
        assertEquals("int(pointer, pointer, long, float)", signature(f.get("lathe_two")));
        assertEquals("pointer()", signature(f.get("lathe_last_error")));
        try {
            parse("LATHE_API int32_t lathe_bad(struct dims d);");
            fail("a struct passed by value must be rejected");
        } catch (AssertionError expected) {
            // the message names the function and the type
        }
    }
}
