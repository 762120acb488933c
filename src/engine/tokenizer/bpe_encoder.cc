#include "engine/tokenizer/bpe_encoder.h"

#include <queue>
#include <string>

#include "engine/tokenizer/pre_tokenizer.h"
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
  int32_t rank;
  uint32_t len;  // merged length when queued; a different length now means it is stale
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// Reused across the words of one call to avoid an allocation per word.
struct Scratch {
  std::vector<Symbol> symbols;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
};

void encode_word(const Vocab& vocab, std::string_view word, Scratch& s,
                 std::vector<int32_t>& out) {
  if (word.empty()) return;
  if (vocab.ignore_merges()) {
    if (const auto id = vocab.find(word)) {
      out.push_back(*id);
      return;
    }
  }
  auto& symbols = s.symbols;
  symbols.clear();
  for (size_t off = 0; off < word.size();) {
    const size_t len = std::min(utf8_sequence_length(static_cast<uint8_t>(word[off])),
                                word.size() - off);
    const auto idx = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), idx - 1,
                       off + len == word.size() ? -1 : idx + 1});
    off += len;
  }
  auto piece = [&](const Symbol& sym) { return word.substr(sym.start, sym.len); };
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t rank = vocab.merge_rank(piece(symbols[left]), piece(symbols[right]));
    if (rank < 0) return;
    s.queue.push({left, right, rank, symbols[left].len + symbols[right].len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!s.queue.empty()) {
    const Bigram b = s.queue.top();
    s.queue.pop();
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
    const std::string_view p = piece(symbols[i]);
    if (const auto id = vocab.find(p)) {
      out.push_back(*id);
      continue;
    }
    // A symbol the vocabulary lacks falls back to its single bytes that are tokens (the
    // reference drops the others).
    for (char c : p) {
      if (const auto id = vocab.find(std::string_view(&c, 1))) out.push_back(*id);
    }
  }
}

}  // namespace

void bpe_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  Scratch scratch;
  std::string mapped;
  for (const std::string& word : pre_tokenize(vocab.pre_type(), text)) {
    mapped.clear();
    for (char c : word) mapped += byte_to_bpe_char(static_cast<uint8_t>(c));
    encode_word(vocab, mapped, scratch, out);
  }
}

}  // namespace zs::engine
