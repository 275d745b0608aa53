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
 *
 * <p>NOTE: a tokenizer that {@linkplain Tokenizer#addsSpacePrefix adds a space prefix} encodes
 * "Hello" as "▁Hello"; that space is dropped from the first text token after BOS (llama2.c's
 * rule, which its reference outputs follow) and, for {@link #decodeAll}, from the first token of
 * the sequence. A decoder streaming a continuation keeps the space of its first token: there it
 * separates the new text from the prompt.
 */
public final class TokenTextDecoder {
    private final Tokenizer tokenizer;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private boolean dropNextSpace;

    /** A decoder for a continuation: the first token's leading space is kept unless it follows BOS. */
    public TokenTextDecoder(Tokenizer tokenizer) {
        this(tokenizer, false);
    }

    /**
     * @param atTextStart true when the ids begin a text, so the space prefix the encoder added
     *                    before it is dropped
     */
    public TokenTextDecoder(Tokenizer tokenizer, boolean atTextStart) {
        this.tokenizer = tokenizer;
        this.dropNextSpace = atTextStart && tokenizer.addsSpacePrefix();
    }

    /** The text completed by this token (possibly empty). */
    public String next(int tokenId) {
        if (tokenId == tokenizer.bosId()) {
            dropNextSpace = tokenizer.addsSpacePrefix();
            return "";
        }
        if (tokenizer.isControl(tokenId)) {
            return "";
        }
        byte[] bytes = tokenizer.decodeBytes(tokenId);
        int from = 0;
        if (dropNextSpace && bytes.length > 0) {
            from = bytes[0] == ' ' ? 1 : 0;
            dropNextSpace = false;
        }
        pending.write(bytes, from, bytes.length - from);
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

    /** Decodes a whole sequence at once, as the text it was encoded from. */
    public static String decodeAll(Tokenizer tokenizer, int[] ids) {
        TokenTextDecoder decoder = new TokenTextDecoder(tokenizer, true);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(decoder.next(id));
        }
        return sb.append(decoder.flush()).toString();
    }
}
