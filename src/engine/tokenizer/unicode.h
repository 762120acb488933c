#pragma once
// Unicode helpers shared by the tokenizers: lenient UTF-8 decoding that treats bad bytes
// the way the reference tokenizer (llama.cpp) does, codepoint classes taken from ICU, and
// GPT-2's reversible byte <-> printable-codepoint mapping used by byte-level BPE vocabularies.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zs::engine {

constexpr uint32_t kReplacementChar = 0xFFFD;

// Length of a UTF-8 sequence judged by its first byte alone (stray continuation bytes
// count as 1). SentencePiece-style splitting walks raw bytes with this, so invalid input
// still yields byte-fallback tokens instead of being rewritten.
size_t utf8_sequence_length(uint8_t first_byte);

// Decodes UTF-8. A byte that does not start a complete sequence becomes U+FFFD and decoding
// resumes at the next byte; codepoints above U+10FFFF are refused the same way.
std::vector<uint32_t> utf8_to_codepoints(std::string_view text);
void append_utf8(uint32_t cpt, std::string& out);

// Unicode general-category groups plus White_Space, as bits. A valid but unassigned
// codepoint has kCpUndefined, so "no flags at all" only happens outside the Unicode range.
enum CodepointFlag : uint16_t {
  kCpUndefined = 1 << 0,
  kCpNumber = 1 << 1,       // \p{N}
  kCpLetter = 1 << 2,       // \p{L}
  kCpSeparator = 1 << 3,    // \p{Z}
  kCpMark = 1 << 4,         // \p{M}
  kCpPunctuation = 1 << 5,  // \p{P}
  kCpSymbol = 1 << 6,       // \p{S}
  kCpControl = 1 << 7,      // \p{C} other than unassigned
  kCpWhitespace = 1 << 8,   // \s (the White_Space property)
};
uint16_t codepoint_flags(uint32_t cpt);

// GPT-2 byte-level BPE: every byte is shown as one printable codepoint (UTF-8 of it here).
std::string_view byte_to_bpe_char(uint8_t byte);
// The byte a printable codepoint stands for, or -1 when it is not one of the 256.
int bpe_char_to_byte(uint32_t cpt);

}  // namespace zs::engine
