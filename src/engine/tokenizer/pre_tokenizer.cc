#include "engine/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "engine/tokenizer/unicode.h"

namespace zs::engine {

namespace {

// The text being split: codepoints and their class bits. Positions at or past the end of the
// current segment read as "no class", which is how a regex sees the end of its input.
struct Text {
  const uint32_t* cpt;
  const uint16_t* flags;
};

struct Range {
  uint32_t lo, hi;
};

// Character ranges of the DeepSeek LLM letter class (cased letters of many scripts).
constexpr Range kDeepseekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
    {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},     {0x38C, 0x38C},
    {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// DeepSeek LLM punctuation class: ASCII punctuation and symbols, their full-width forms,
// curly quotes, ideographic space and full stop.
constexpr Range kDeepseekPunct[] = {{0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F},
                                    {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
// CJK ideographs, the scripts between U+0800 and them, and Hangul (DeepSeek pre-tokenizers).
constexpr Range kCjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};

bool is_cr_lf(uint32_t c) { return c == '\r' || c == '\n'; }

// The reference runs its explicit-range expressions on text where every non-ASCII whitespace
// codepoint has been replaced by a vertical tab, so such codepoints never match a range.
bool in_range_class(const Text& t, size_t i, size_t end, const Range* lo, const Range* hi) {
  if (i >= end) return false;
  const uint32_t x = t.cpt[i];
  if (x > 0x7F && (t.flags[i] & kCpWhitespace)) return false;
  for (const Range* r = lo; r != hi; ++r) {
    if (x >= r->lo && x <= r->hi) return true;
  }
  return false;
}

template <size_t N>
bool in_class(const Text& t, size_t i, size_t end, const Range (&ranges)[N]) {
  return in_range_class(t, i, end, ranges, ranges + N);
}

// Applies one expression to every segment: matches and the text between them become
// segments (lengths in codepoints), like iterating std::regex matches over each segment.
template <typename Match>
void apply_pass(const Text& t, std::vector<size_t>& segments, Match match) {
  std::vector<size_t> out;
  out.reserve(segments.size() * 2);
  size_t start = 0;
  for (size_t len : segments) {
    const size_t end = start + len;
    size_t pos = start;
    size_t unmatched = start;
    while (pos < end) {
      const size_t n = match(t, pos, end);
      if (n == 0) {
        ++pos;
        continue;
      }
      if (pos > unmatched) out.push_back(pos - unmatched);
      out.push_back(n);
      pos += n;
      unmatched = pos;
    }
    if (end > unmatched) out.push_back(end - unmatched);
    start = end;
  }
  segments.swap(out);
}

struct Cls {
  const Text& t;
  size_t end;
  uint16_t flags(size_t i) const { return i < end ? t.flags[i] : 0; }
  bool letter(size_t i) const { return flags(i) & kCpLetter; }
  bool number(size_t i) const { return flags(i) & kCpNumber; }
  bool space(size_t i) const { return flags(i) & kCpWhitespace; }
  bool punct(size_t i) const { return flags(i) & kCpPunctuation; }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const {
    const uint16_t f = flags(i);
    return f != 0 && !(f & (kCpWhitespace | kCpLetter | kCpNumber));
  }
  uint32_t cpt(size_t i) const { return i < end ? t.cpt[i] : 0xFFFFFFFFu; }
};

// 's|'t|'re|'ve|'m|'ll|'d (ASCII case folded when `any_case`)
size_t match_contraction(const Cls& c, size_t p, bool any_case) {
  if (c.cpt(p) != '\'') return 0;
  auto low = [&](size_t i) {
    uint32_t x = c.cpt(i);
    if (any_case && x >= 'A' && x <= 'Z') x += 'a' - 'A';
    return x;
  };
  const uint32_t a = low(p + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  const uint32_t b = low(p + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
size_t match_gpt2(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  if (size_t n = match_contraction(c, p, false)) return n;
  const size_t q0 = p + (c.cpt(p) == ' ' ? 1 : 0);
  size_t q = q0;
  if (c.letter(q)) {
    while (c.letter(q)) ++q;
    return q - p;
  }
  if (c.number(q)) {
    while (c.number(q)) ++q;
    return q - p;
  }
  if (c.other(q)) {
    while (c.other(q)) ++q;
    return q - p;
  }
  size_t k = p;
  while (c.space(k)) ++k;
  const size_t n = k - p;
  if (n == 0) return 0;
  if (k == end) return n;  // the lookahead sees the end of the text
  return n > 1 ? n - 1 : 0;
}

// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
// \p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t match_llama3(const Text& t, size_t p, size_t end, size_t max_digits) {
  const Cls c{t, end};
  if (size_t n = match_contraction(c, p, true)) return n;
  const uint32_t cp = c.cpt(p);
  if (c.letter(p) || (!is_cr_lf(cp) && !c.number(p) && c.letter(p + 1))) {
    size_t q = p + 1;
    while (c.letter(q)) ++q;
    return q - p;
  }
  if (c.number(p)) {
    size_t q = p;
    while (c.number(q) && q - p < max_digits) ++q;
    return q - p;
  }
  size_t q = p + (cp == ' ' ? 1 : 0);
  if (c.other(q)) {
    while (c.other(q)) ++q;
    while (q < end && is_cr_lf(t.cpt[q])) ++q;
    return q - p;
  }
  size_t k = p;
  size_t last_newline_end = 0;
  while (c.space(k)) {
    if (is_cr_lf(t.cpt[k])) last_newline_end = k + 1;
    ++k;
  }
  if (last_newline_end > 0) return last_newline_end - p;  // \s*[\r\n]+
  const size_t n = k - p;
  if (n == 0) return 0;
  if (k == end || n == 1) return n;  // \s+(?!\S) at the end, else plain \s+
  return n - 1;
}

size_t match_newline(const Text& t, size_t p, size_t) { return is_cr_lf(t.cpt[p]) ? 1 : 0; }

// \s?X+ for a class X given as a predicate on positions.
template <typename Pred>
size_t match_space_then_run(const Cls& c, size_t p, Pred in_class) {
  size_t q = p;
  if (c.space(q) && in_class(q + 1)) ++q;
  if (!in_class(q)) return 0;
  while (in_class(q)) ++q;
  return q - p;
}

size_t match_space_letters(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  return match_space_then_run(c, p, [&](size_t i) { return c.letter(i); });
}

size_t match_space_punct(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  return match_space_then_run(c, p, [&](size_t i) { return c.punct(i); });
}

size_t match_deepseek_letters(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  return match_space_then_run(
      c, p, [&](size_t i) { return in_class(t, i, end, kDeepseekLetters); });
}

size_t match_deepseek_punct(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  return match_space_then_run(
      c, p, [&](size_t i) { return in_class(t, i, end, kDeepseekPunct); });
}

size_t match_cjk(const Text& t, size_t p, size_t end) {
  size_t q = p;
  while (in_class(t, q, end, kCjk)) ++q;
  return q - p;
}

size_t match_one_number(const Text& t, size_t p, size_t end) {
  return Cls{t, end}.number(p) ? 1 : 0;
}

size_t match_numbers(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  size_t q = p;
  while (c.number(q)) ++q;
  return q - p;
}

size_t match_three_digits(const Text& t, size_t p, size_t end) {
  if (p + 3 > end) return 0;
  for (size_t i = p; i < p + 3; ++i) {
    if (t.cpt[i] < '0' || t.cpt[i] > '9') return 0;
  }
  return 3;
}

// [\p{P}\$\+<=>\^~\|`]+
size_t match_punct_symbols(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  auto in_class = [&](size_t i) {
    if (i >= end) return false;
    const uint32_t x = t.cpt[i];
    return c.punct(i) || x == '$' || x == '+' || x == '<' || x == '=' || x == '>' || x == '^' ||
           x == '~' || x == '|' || x == '`';
  };
  size_t q = p;
  while (in_class(q)) ++q;
  return q - p;
}

//  ?[^(\s|.,!?…。，、।۔،)]+
size_t match_bloom(const Text& t, size_t p, size_t end) {
  const Cls c{t, end};
  auto in_class = [&](size_t i) {
    if (i >= end || c.space(i)) return false;
    switch (t.cpt[i]) {
      case '(': case '|': case '.': case ',': case '!': case '?': case ')':
      case 0x2026: case 0x3002: case 0xFF0C: case 0x3001: case 0x0964: case 0x06D4: case 0x060C:
        return false;
      default:
        return true;
    }
  };
  size_t q = p + (t.cpt[p] == ' ' ? 1 : 0);
  if (!in_class(q)) return 0;
  while (in_class(q)) ++q;
  return q - p;
}

// \s+$ : the whitespace that ends a segment, if any. Done per segment instead of per
// position so that long inner whitespace runs stay linear.
void apply_trailing_space(const Text& t, std::vector<size_t>& segments) {
  std::vector<size_t> out;
  out.reserve(segments.size() * 2);
  size_t start = 0;
  for (size_t len : segments) {
    const size_t end = start + len;
    size_t k = end;
    while (k > start && (t.flags[k - 1] & kCpWhitespace)) --k;
    if (k > start) out.push_back(k - start);
    if (end > k) out.push_back(end - k);
    start = end;
  }
  segments.swap(out);
}

}  // namespace

core::Result<PreTokenizerType> pre_tokenizer_from_name(std::string_view name) {
  struct Entry {
    std::string_view name;
    PreTokenizerType type;
  };
  static constexpr Entry kNames[] = {
      {"default", PreTokenizerType::kDefault},
      {"llama3", PreTokenizerType::kLlama3},
      {"llama-v3", PreTokenizerType::kLlama3},
      {"llama-bpe", PreTokenizerType::kLlama3},
      {"falcon3", PreTokenizerType::kLlama3},
      {"dbrx", PreTokenizerType::kLlama3},
      {"smaug-bpe", PreTokenizerType::kLlama3},
      {"chatglm-bpe", PreTokenizerType::kLlama3},
      {"deepseek-llm", PreTokenizerType::kDeepseekLlm},
      {"deepseek-coder", PreTokenizerType::kDeepseekCoder},
      {"falcon", PreTokenizerType::kFalcon},
      {"mpt", PreTokenizerType::kGpt2},
      {"gpt-2", PreTokenizerType::kGpt2},
      {"phi-2", PreTokenizerType::kGpt2},
      {"jina-es", PreTokenizerType::kGpt2},
      {"jina-de", PreTokenizerType::kGpt2},
      {"gigachat", PreTokenizerType::kGpt2},
      {"jina-v1-en", PreTokenizerType::kGpt2},
      {"jina-v2-es", PreTokenizerType::kGpt2},
      {"jina-v2-de", PreTokenizerType::kGpt2},
      {"jina-v2-code", PreTokenizerType::kGpt2},
      {"roberta-bpe", PreTokenizerType::kGpt2},
      {"olmo", PreTokenizerType::kGpt2},
      {"jais", PreTokenizerType::kGpt2},
      {"starcoder", PreTokenizerType::kStarcoder},
      {"refact", PreTokenizerType::kStarcoder},
      {"command-r", PreTokenizerType::kStarcoder},
      {"smollm", PreTokenizerType::kStarcoder},
      {"codeshell", PreTokenizerType::kStarcoder},
      {"exaone", PreTokenizerType::kStarcoder},
      {"minerva-7b", PreTokenizerType::kStarcoder},
      {"qwen2", PreTokenizerType::kQwen2},
      {"deepseek-r1-qwen", PreTokenizerType::kQwen2},
      {"stablelm2", PreTokenizerType::kQwen2},
      {"megrez", PreTokenizerType::kQwen2},
      {"bloom", PreTokenizerType::kBloom},
      {"poro-chat", PreTokenizerType::kBloom},
      {"gpt3-finnish", PreTokenizerType::kBloom},
      {"viking", PreTokenizerType::kViking},
  };
  for (const Entry& e : kNames) {
    if (e.name == name) return e.type;
  }
  return core::Status::error("unsupported tokenizer pre-tokenizer '" + std::string(name) +
                             "' (tokenizer.ggml.pre); its splitting rules are not implemented");
}

std::vector<std::string> pre_tokenize(PreTokenizerType type, std::string_view text) {
  const std::vector<uint32_t> cpts = utf8_to_codepoints(text);
  if (cpts.empty()) return {};
  std::vector<uint16_t> flags(cpts.size());
  for (size_t i = 0; i < cpts.size(); ++i) flags[i] = codepoint_flags(cpts[i]);
  const Text t{cpts.data(), flags.data()};

  std::vector<size_t> seg{cpts.size()};
  auto llama3 = [](size_t digits) {
    return [digits](const Text& tx, size_t p, size_t e) { return match_llama3(tx, p, e, digits); };
  };
  switch (type) {
    case PreTokenizerType::kDefault:
      apply_pass(t, seg, match_punct_symbols);
      apply_pass(t, seg, match_gpt2);
      apply_pass(t, seg, match_numbers);
      apply_pass(t, seg, match_three_digits);
      break;
    case PreTokenizerType::kGpt2:
      apply_pass(t, seg, match_gpt2);
      break;
    case PreTokenizerType::kLlama3:
      apply_pass(t, seg, llama3(3));
      break;
    case PreTokenizerType::kQwen2:
      apply_pass(t, seg, llama3(1));
      break;
    case PreTokenizerType::kDeepseekLlm:
      apply_pass(t, seg, match_newline);
      apply_pass(t, seg, match_deepseek_letters);
      apply_pass(t, seg, match_deepseek_punct);
      apply_trailing_space(t, seg);
      apply_pass(t, seg, match_cjk);
      apply_pass(t, seg, match_numbers);
      break;
    case PreTokenizerType::kDeepseekCoder:
      apply_pass(t, seg, match_newline);
      apply_pass(t, seg, match_space_letters);
      apply_pass(t, seg, match_space_punct);
      apply_pass(t, seg, match_cjk);
      apply_pass(t, seg, match_one_number);
      break;
    case PreTokenizerType::kFalcon:
      apply_pass(t, seg, match_punct_symbols);
      apply_pass(t, seg, match_gpt2);
      apply_pass(t, seg, match_three_digits);
      break;
    case PreTokenizerType::kStarcoder:
      apply_pass(t, seg, match_one_number);
      apply_pass(t, seg, match_gpt2);
      break;
    case PreTokenizerType::kBloom:
      apply_pass(t, seg, match_bloom);
      break;
    case PreTokenizerType::kViking:
      apply_pass(t, seg, match_bloom);
      apply_pass(t, seg, match_one_number);
      break;
  }

  std::vector<std::string> words;
  words.reserve(seg.size());
  size_t start = 0;
  for (size_t len : seg) {
    std::string w;
    for (size_t i = start; i < start + len; ++i) append_utf8(cpts[i], w);
    words.push_back(std::move(w));
    start += len;
  }
  return words;
}

}  // namespace zs::engine
