#include "engine/tokenizer/wpm_encoder.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>

#include <algorithm>
#include <string>

#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace zs::engine {

namespace {

bool is_cjk_ideograph(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// First codepoint of the canonical decomposition (drops combining accents, as the reference).
uint32_t nfd_first(uint32_t c) {
  if (c < 0xC0) return c;
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&err);
  if (U_FAILURE(err)) return c;
  UChar buf[32];
  const int32_t n = unorm2_getDecomposition(nfd, static_cast<UChar32>(c), buf, 32, &err);
  if (U_FAILURE(err) || n <= 0) return c;
  UChar32 first;
  int32_t i = 0;
  U16_NEXT(buf, i, n, first);
  return static_cast<uint32_t>(first);
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t raw : utf8_to_codepoints(text)) {
    const uint32_t c = nfd_first(raw);
    const uint16_t f = codepoint_flags(c);
    if (f & kCpWhitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (c == 0 || c == kReplacementChar || (f & kCpControl)) continue;
    std::string s;
    append_utf8(static_cast<uint32_t>(u_tolower(static_cast<UChar32>(c))), s);
    if ((f & kCpPunctuation) || (c < 0x7F && (f & kCpSymbol)) || is_cjk_ideograph(c)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  const size_t max_len = vocab.max_token_length();
  for (const std::string& w : split_words(text)) {
    if (w.empty()) continue;
    const std::string word = "\xE2\x96\x81" + w;
    const size_t start = out.size();
    const size_t n = word.size();
    bool ok = true;
    for (size_t i = 0; i < n && ok;) {
      ok = false;
      for (size_t j = std::min(n, i + max_len + 1); j > i; --j) {
        if (const auto id = vocab.find(std::string_view(word).substr(i, j - i))) {
          out.push_back(*id);
          i = j;
          ok = true;
          break;
        }
      }
    }
    if (!ok) out.resize(start);
    if (out.size() == start && vocab.unk() != kNoToken) out.push_back(vocab.unk());
  }
}

}  // namespace zs::engine
