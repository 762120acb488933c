#include "engine/structured/gbnf.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace zs::engine::structured {

using core::Result;
using core::Status;

namespace {

constexpr size_t kMaxText = 256 * 1024;
constexpr int kMaxDepth = 64;
constexpr int kMaxBound = 1000;
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// ---- UTF-8 ----------------------------------------------------------------------------

int utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

std::vector<uint8_t> utf8_bytes(uint32_t cp) {
  switch (utf8_length(cp)) {
    case 1: return {static_cast<uint8_t>(cp)};
    case 2: return {static_cast<uint8_t>(0xC0 | (cp >> 6)), static_cast<uint8_t>(0x80 | (cp & 0x3F))};
    case 3:
      return {static_cast<uint8_t>(0xE0 | (cp >> 12)), static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
              static_cast<uint8_t>(0x80 | (cp & 0x3F))};
    default:
      return {static_cast<uint8_t>(0xF0 | (cp >> 18)), static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F)),
              static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)), static_cast<uint8_t>(0x80 | (cp & 0x3F))};
  }
}

// The UTF-8 encodings of the code points lo..hi (same encoded length), as alternatives of
// byte-range sequences: the range is split until, byte by byte, every position is a plain
// range (the lower bits run through all their values below a position that changes).
void add_same_length(uint32_t lo, uint32_t hi, std::vector<Expr>& out) {
  const int n = utf8_length(lo);
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;  // the bits of the last i bytes
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        add_same_length(lo, lo | m, out);
        add_same_length((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        add_same_length(lo, (hi & ~m) - 1, out);
        add_same_length(hi & ~m, hi, out);
        return;
      }
    }
  }
  const std::vector<uint8_t> a = utf8_bytes(lo), b = utf8_bytes(hi);
  std::vector<Expr> bytes;
  for (size_t k = 0; k < a.size(); ++k) bytes.push_back(Expr::byte_range(a[k], b[k]));
  out.push_back(bytes.size() == 1 ? std::move(bytes[0]) : Expr::seq(std::move(bytes)));
}

// Code points lo..hi, surrogates left out.
void add_range(uint32_t lo, uint32_t hi, std::vector<Expr>& out) {
  if (lo > hi) return;
  if (lo <= 0xDFFF && hi >= 0xD800) {
    if (lo < 0xD800) add_range(lo, 0xD7FF, out);
    if (hi > 0xDFFF) add_range(0xE000, hi, out);
    return;
  }
  for (uint32_t edge : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= edge && hi > edge) {
      add_range(lo, edge, out);
      add_range(edge + 1, hi, out);
      return;
    }
  }
  add_same_length(lo, hi, out);
}

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

Expr class_expr(Ranges ranges, bool negated) {
  std::sort(ranges.begin(), ranges.end());
  Ranges merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, r.second);
    else merged.push_back(r);
  }
  if (negated) {
    Ranges inv;
    uint32_t next = 0;
    for (const auto& r : merged) {
      if (r.first > next) inv.emplace_back(next, r.first - 1);
      next = r.second + 1;
    }
    if (next <= kMaxCodePoint) inv.emplace_back(next, kMaxCodePoint);
    merged = std::move(inv);
  }
  std::vector<Expr> alts;
  for (const auto& r : merged) add_range(r.first, r.second, alts);
  // An empty class matches nothing: an empty byte set.
  if (alts.empty()) return Expr::byte_set(ByteSet());
  return alts.size() == 1 ? std::move(alts[0]) : Expr::alt(std::move(alts));
}

// ---- Parser ---------------------------------------------------------------------------

struct Failed {
  size_t pos;
  std::string message;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<Grammar> run() {
    try {
      return parse();
    } catch (const Failed& f) {
      return Status::invalid_argument("grammar: " + where(f.pos) + ": " + f.message);
    }
  }

 private:
  std::string where(size_t pos) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(col);
  }
  [[noreturn]] void fail(const std::string& message) const { throw Failed{p_, message}; }
  [[noreturn]] void fail_at(size_t pos, const std::string& message) const { throw Failed{pos, message}; }

  bool at_end() const { return p_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[p_]; }

  // Spaces, tabs and comments; newlines too when `newlines`.
  void skip(bool newlines) {
    while (!at_end()) {
      const char c = s_[p_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++p_;
      } else if (c == '#') {
        while (!at_end() && s_[p_] != '\n') ++p_;
      } else {
        break;
      }
    }
  }

  static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }

  std::string name() {
    const size_t start = p_;
    while (!at_end() && word_char(s_[p_])) ++p_;
    if (p_ == start) fail("expected a rule name");
    return std::string(s_.substr(start, p_ - start));
  }

  // One UTF-8 character of the grammar text as a code point.
  uint32_t decode() {
    const auto b0 = static_cast<uint8_t>(s_[p_]);
    int n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || p_ + static_cast<size_t>(n) > s_.size()) fail("the grammar is not valid UTF-8");
    uint32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const auto b = static_cast<uint8_t>(s_[p_ + static_cast<size_t>(k)]);
      if ((b & 0xC0) != 0x80) fail("the grammar is not valid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    if (utf8_length(cp) != n || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF))
      fail("the grammar is not valid UTF-8");
    p_ += static_cast<size_t>(n);
    return cp;
  }

  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      if (at_end()) fail("expected " + std::to_string(digits) + " hex digits");
      const char c = s_[p_];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) fail("expected " + std::to_string(digits) + " hex digits");
      v = v * 16 + static_cast<uint32_t>(d);
      ++p_;
    }
    if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) fail("escape names no Unicode character");
    return v;
  }

  // One character of a literal or class, escapes resolved.
  uint32_t character() {
    if (at_end()) fail("unexpected end of the grammar");
    if (s_[p_] != '\\') return decode();
    const size_t at = p_++;
    if (at_end()) fail("unexpected end of the grammar after '\\'");
    const char c = s_[p_++];
    switch (c) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '[': case ']': case '-': case '^': case '\'': return static_cast<uint8_t>(c);
      default: fail_at(at, std::string("unknown escape '\\") + c + "'");
    }
  }

  Expr literal() {
    ++p_;  // "
    std::string bytes;
    while (peek() != '"') {
      if (at_end() || peek() == '\n') fail("unterminated literal");
      for (uint8_t b : utf8_bytes(character())) bytes.push_back(static_cast<char>(b));
    }
    ++p_;
    return Expr::literal(bytes);
  }

  Expr char_class() {
    const size_t open = p_++;  // [
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++p_;
    }
    Ranges ranges;
    while (peek() != ']') {
      if (at_end() || peek() == '\n') fail_at(open, "unterminated character class");
      const uint32_t lo = character();
      uint32_t hi = lo;
      if (peek() == '-' && p_ + 1 < s_.size() && s_[p_ + 1] != ']') {
        ++p_;
        hi = character();
        if (hi < lo) fail("character range runs backwards");
      }
      ranges.emplace_back(lo, hi);
    }
    ++p_;
    return class_expr(std::move(ranges), negated);
  }

  int bound() {
    const size_t start = p_;
    long v = 0;
    while (!at_end() && s_[p_] >= '0' && s_[p_] <= '9') {
      v = v * 10 + (s_[p_++] - '0');
      if (v > kMaxBound) fail_at(start, "repetition bound over " + std::to_string(kMaxBound));
    }
    if (p_ == start) fail("expected a number");
    return static_cast<int>(v);
  }

  Expr repetition(Expr e) {
    while (true) {
      const char c = peek();
      if (c == '*') {
        ++p_;
        e = Expr::star(std::move(e));
      } else if (c == '+') {
        ++p_;
        e = Expr::plus(std::move(e));
      } else if (c == '?') {
        ++p_;
        e = Expr::opt(std::move(e));
      } else if (c == '{') {
        const size_t open = p_++;
        skip(false);
        int lo = 0, hi = -1;
        if (peek() != ',') lo = bound();
        skip(false);
        if (peek() == ',') {
          ++p_;
          skip(false);
          if (peek() != '}') hi = bound();
        } else {
          hi = lo;
        }
        skip(false);
        if (peek() != '}') fail_at(open, "expected '}' to close the repetition");
        ++p_;
        if (hi >= 0 && hi < lo) fail_at(open, "repetition bounds run backwards");
        e = Expr::repeat(std::move(e), lo, hi);
      } else {
        return e;
      }
    }
  }

  Expr sequence(bool nested, int depth) {
    std::vector<Expr> items;
    while (true) {
      skip(nested);
      const char c = peek();
      Expr item;
      if (c == '"') {
        item = literal();
      } else if (c == '[') {
        item = char_class();
      } else if (c == '.') {
        ++p_;
        item = class_expr({}, /*negated=*/true);
      } else if (c == '(') {
        if (depth >= kMaxDepth) fail("groups nested deeper than " + std::to_string(kMaxDepth));
        const size_t open = p_++;
        item = alternatives(/*nested=*/true, depth + 1);
        skip(true);
        if (peek() != ')') fail_at(open, "unbalanced '(': no ')' closes it");
        ++p_;
      } else if (word_char(c)) {
        const size_t at = p_;
        const std::string n = name();
        skip(false);
        if (s_.substr(p_, 3) == "::=") fail_at(at, "a new rule begins before this one ends (rules go one per line)");
        item = Expr::ref(rule_for(n, at));
      } else {
        break;
      }
      items.push_back(repetition(std::move(item)));
    }
    return items.size() == 1 ? std::move(items[0]) : Expr::seq(std::move(items));
  }

  Expr alternatives(bool nested, int depth) {
    std::vector<Expr> alts;
    alts.push_back(sequence(nested, depth));
    while (true) {
      skip(nested);
      if (peek() != '|') break;
      ++p_;
      skip(true);
      alts.push_back(sequence(nested, depth));
    }
    return alts.size() == 1 ? std::move(alts[0]) : Expr::alt(std::move(alts));
  }

  int rule_for(const std::string& n, size_t at) {
    auto it = rules_.find(n);
    if (it != rules_.end()) return it->second.id;
    const int id = b_.declare(n);
    rules_.emplace(n, Rule{id, at, false});
    return id;
  }

  Result<Grammar> parse() {
    if (s_.size() > kMaxText) fail_at(0, "the grammar is longer than 256 KiB");
    while (true) {
      skip(true);
      if (at_end()) break;
      const size_t at = p_;
      const std::string n = name();
      skip(false);
      if (s_.substr(p_, 3) != "::=") fail("expected '::=' after the rule name '" + n + "'");
      p_ += 3;
      const int id = rule_for(n, at);
      Rule& r = rules_[n];
      if (r.defined) fail_at(at, "rule '" + n + "' is defined twice");
      r.defined = true;
      b_.define(id, alternatives(/*nested=*/false, 0));
      skip(false);
      if (!at_end() && peek() != '\n') {
        if (peek() == ')') fail("unbalanced ')': no '(' opens it");
        fail(std::string("unexpected '") + peek() + "'");
      }
    }
    for (const auto& [n, r] : rules_)
      if (!r.defined) fail_at(r.first_use, "rule '" + n + "' is used but never defined");
    auto root = rules_.find("root");
    if (root == rules_.end()) fail_at(0, "no rule named 'root' (where output starts)");
    auto built = b_.build(root->second.id);
    if (!built) fail_at(0, built.status().message());
    return built;
  }

  struct Rule {
    int id;
    size_t first_use;
    bool defined;
  };
  std::string_view s_;
  size_t p_ = 0;
  GrammarBuilder b_;
  std::map<std::string, Rule> rules_;
};

}  // namespace

Result<Grammar> compile_gbnf(std::string_view text) { return Parser(text).run(); }

}  // namespace zs::engine::structured
