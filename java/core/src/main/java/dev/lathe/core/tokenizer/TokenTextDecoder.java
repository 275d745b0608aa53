package dev.lathe.core.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns a stream of token ids into text, emitting only complete UTF-8 characters: a character
 * whose bytes span several tokens is held back until its last byte arrives. Invalid byte
 * sequences become U+FFFD, as in llama.cpp.
 */
public final class TokenTextDecoder {
    private final Tokenizer tokenizer;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    public TokenTextDecoder(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The text completed by this token (possibly empty). */
    public String next(int tokenId) {
        if (tokenizer.isControl(tokenId)) {
            return "";
        }
        pending.writeBytes(tokenizer.decodeBytes(tokenId));
        return drain(false);
    }

    /** Whatever is still held back, with incomplete characters replaced by U+FFFD. */
    public String flush() {
        return drain(true);
    }

    private String drain(boolean endOfInput) {
        ByteBuffer in = ByteBuffer.wrap(pending.toByteArray());
        CharBuffer out = CharBuffer.allocate(in.remaining() + 2);
        CoderResult result = utf8.decode(in, out, endOfInput);
        if (result.isOverflow()) {
            throw new IllegalStateException("UTF-8 decode overflow"); // cannot happen: chars <= bytes + 2
        }
        if (endOfInput) {
            utf8.flush(out);
            utf8.reset();
        }
        pending.reset();
        pending.write(in.array(), in.position(), in.remaining());
        out.flip();
        return out.toString();
    }

    /** Decodes a whole sequence at once. */
    public static String decodeAll(Tokenizer tokenizer, int[] ids) {
        TokenTextDecoder decoder = new TokenTextDecoder(tokenizer);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(decoder.next(id));
        }
        return sb.append(decoder.flush()).toString();
    }
}
