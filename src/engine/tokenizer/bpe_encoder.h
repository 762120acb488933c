#pragma once
// Byte-level BPE encoding of one stretch of plain text (no special tokens in it): the text is
// split into words by the vocabulary's pre-tokenizer, each word's bytes are mapped to GPT-2's
// printable characters, and adjacent symbols are merged lowest merge rank first (ties:
// leftmost), as llama.cpp's BPE tokenizer does.
#include <cstdint>
#include <string_view>
#include <vector>

namespace zs::engine {

class Vocab;

void bpe_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace zs::engine
