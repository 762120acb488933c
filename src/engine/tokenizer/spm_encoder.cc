#include "engine/tokenizer/spm_encoder.h"

#include <algorithm>
#include <queue>
#include <string>

#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace zs::engine {

namespace {

struct Symbol {
  uint32_t start;
  uint32_t len;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  uint32_t len;  // merged length when queued; a different length now means it is stale
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void spm_encode(const Vocab& vocab, std::string_view raw, std::vector<int32_t>& out) {
  if (raw.empty()) return;
  std::string text;
  text.reserve(raw.size() + raw.size() / 4);
  for (char c : raw) {
    if (c == ' ') {
      text += "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK
    } else {
      text.push_back(c);
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(utf8_sequence_length(static_cast<uint8_t>(text[off])),
                                text.size() - off);
    const auto idx = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), idx - 1,
                       off + len == text.size() ? -1 : idx + 1});
    off += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const auto id = vocab.find(std::string_view(text).substr(l.start, l.len + r.len));
    if (!id) return;
    queue.push({left, right, vocab.token(*id).score, l.len + r.len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const std::string_view piece = std::string_view(text).substr(s.start, s.len);
    if (const auto id = vocab.find(piece)) {
      out.push_back(*id);
      continue;
    }
    // Merged pieces are always tokens, so only single characters get here.
    for (char c : piece) {
      const int32_t id = vocab.byte_token(static_cast<uint8_t>(c));
      if (id != kNoToken) out.push_back(id);
    }
  }
}

}  // namespace zs::engine
