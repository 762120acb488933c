#pragma once
// SentencePiece-style encoding of one stretch of plain text (no special tokens in it):
// spaces become U+2581, then adjacent pieces are merged best-score first (ties: leftmost)
// while the merged text is a vocabulary token; pieces left without a token become
// byte-fallback tokens <0xNN>. This is the merge order of llama.cpp's SPM tokenizer.
#include <cstdint>
#include <string_view>
#include <vector>

namespace zs::engine {

class Vocab;

// Appends the tokens of `text` to `out`. `text` is taken as is: the caller adds the leading
// space of add_space_prefix.
void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace zs::engine
