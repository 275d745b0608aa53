package dev.lathe.core.tokenizer;

import java.util.List;
import java.util.Set;

/**
 * Finds a chat model's end-of-turn token when the file names none: the control token whose text
 * is one of the markers chat templates end a turn with. llama.cpp does the same so that a
 * Qwen2 or Phi-3 file without tokenizer.ggml.eot_token_id still stops after the answer.
 */
final class EndOfTurnToken {
    private static final Set<String> MARKERS = Set.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>", "<|endoftext|>", "<EOT>",
            "<\uFF5Cend\u2581of\u2581sentence\uFF5C>"); // DeepSeek's fullwidth-bar marker

    private EndOfTurnToken() {
    }

    /** The lowest-id control token with a marker text other than {@code eosId}, or -1. */
    static int find(List<String> tokens, int[] types, int eosId) {
        for (int id = 0; id < tokens.size(); id++) {
            boolean control = types != null && types[id] == Vocabulary.TYPE_CONTROL;
            if (control && id != eosId && MARKERS.contains(tokens.get(id))) {
                return id;
            }
        }
        return -1;
    }
}
