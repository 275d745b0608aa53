package dev.lathe.core.tokenizer;

import dev.lathe.core.io.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a llama2.c tokenizer.bin: a little-endian uint32 max_token_length, then for each token
 * (no count: until the end of the file) an f32 score, an i32 byte length and that many UTF-8
 * bytes. Ids 0, 1, 2 are {@code <unk>}, BOS, EOS; 3..258 are the byte tokens
 * {@code <0x00>}..{@code <0xFF>}.
 */
public final class Llama2cTokenizerReader {
    /** tokenizer.bin files are a few hundred KiB; this bounds what a wrong path can make us read. */
    private static final long MAX_FILE_BYTES = 256L << 20;
    private static final int UNKNOWN_ID = 0;
    private static final int BOS_ID = 1;
    private static final int EOS_ID = 2;

    private Llama2cTokenizerReader() {
    }

    public static Vocabulary read(Path path) {
        String source = path.toString();
        byte[] bytes;
        try {
            long size = Files.size(path);
            if (size > MAX_FILE_BYTES) {
                throw new ModelFormatException(source, "is " + size + " bytes; a llama2.c tokenizer.bin is at most "
                        + MAX_FILE_BYTES + " (is this a model checkpoint?)");
            }
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + source, e);
        }
        return parse(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN), source);
    }

    static Vocabulary parse(ByteBuffer in, String source) {
        if (in.remaining() < 4) {
            throw new ModelFormatException(source, "truncated: " + in.remaining()
                    + " bytes, expected at least the 4-byte max_token_length header");
        }
        long maxTokenLength = Integer.toUnsignedLong(in.getInt());
        List<String> tokens = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        var utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        while (in.hasRemaining()) {
            int id = tokens.size();
            long offset = in.position();
            if (in.remaining() < 8) {
                throw new ModelFormatException(source, "truncated at byte " + offset + ": token " + id
                        + " needs an 8-byte score and length, " + in.remaining() + " bytes left");
            }
            float score = in.getFloat();
            int length = in.getInt();
            // NOTE: the length is checked against what the file holds before anything is sized by it.
            if (length < 0 || length > maxTokenLength || length > in.remaining()) {
                throw new ModelFormatException(source, "token " + id + " at byte " + offset + " has length " + length
                        + "; expected 0.." + Math.min(maxTokenLength, in.remaining())
                        + " (max_token_length " + maxTokenLength + ", " + in.remaining() + " bytes left)");
            }
            ByteBuffer pieceBytes = in.slice(in.position(), length);
            in.position(in.position() + length);
            try {
                tokens.add(utf8.decode(pieceBytes).toString());
            } catch (CharacterCodingException e) {
                throw new ModelFormatException(source, "token " + id + " at byte " + offset + " is not valid UTF-8", e);
            }
            scores.add(score);
        }
        if (tokens.size() <= EOS_ID) {
            throw new ModelFormatException(source, "holds " + tokens.size() + " tokens; expected at least <unk>, BOS and EOS");
        }
        return toVocabulary(tokens, scores, source);
    }

    private static Vocabulary toVocabulary(List<String> pieces, List<Float> scoreList, String source) {
        int n = pieces.size();
        List<String> tokens = new ArrayList<>(n);
        float[] scores = new float[n];
        int[] types = new int[n];
        for (int id = 0; id < n; id++) {
            String piece = pieces.get(id);
            scores[id] = scoreList.get(id);
            if (id == UNKNOWN_ID) {
                types[id] = Vocabulary.TYPE_UNKNOWN;
            } else if (id == BOS_ID || id == EOS_ID) {
                // NOTE: llama2.c's export writes BOS/EOS as "\n<s>\n" and "\n</s>\n"; the
                // newlines are decoration, the token's text is "<s>" / "</s>".
                types[id] = Vocabulary.TYPE_CONTROL;
                piece = piece.strip();
            } else if (SentencePieceTokenizer.byteOfPiece(piece) >= 0) {
                types[id] = Vocabulary.TYPE_BYTE;
            } else {
                // NOTE: the export writes SentencePiece's U+2581 as a plain space; put it back so
                // the pieces are the ones the SentencePiece encoder looks up.
                types[id] = Vocabulary.TYPE_NORMAL;
                piece = piece.replace(' ', SentencePieceTokenizer.SPACE_MARK);
            }
            tokens.add(piece);
        }
        return new Vocabulary("llama", null, List.copyOf(tokens), scores, types, null,
                BOS_ID, EOS_ID, -1, UNKNOWN_ID, true, true, source);
    }
}
