#pragma once
// WordPiece encoding (BERT vocabularies, `tokenizer.ggml.model = bert`) of one stretch of plain
// text, as llama.cpp does it: codepoints are reduced to the first codepoint of their NFD
// decomposition and lower-cased, the text is split at whitespace and around punctuation and
// CJK ideographs, and each word (with a U+2581 prefix, the GGUF form of a word start) is cut
// greedily into the longest vocabulary tokens; a word that cannot be cut becomes [UNK].
#include <cstdint>
#include <string_view>
#include <vector>

namespace zs::engine {

class Vocab;

void wpm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace zs::engine
