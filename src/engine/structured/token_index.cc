#include "engine/structured/token_index.h"

#include <algorithm>
#include <numeric>

#include "engine/tokenizer/tokenizer.h"

namespace zs::engine::structured {

TokenIndex::TokenIndex(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  pieces_.resize(static_cast<size_t>(n));
  usable_.assign(static_cast<size_t>(n), false);
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_end_of_generation(id)) {
      eog_.push_back(id);
      continue;
    }
    pieces_[static_cast<size_t>(id)] = tok.token_to_piece(id);
    usable_[static_cast<size_t>(id)] = !pieces_[static_cast<size_t>(id)].empty();
  }
  build();
}

TokenIndex::TokenIndex(std::vector<std::string> pieces, std::vector<int32_t> eog)
    : pieces_(std::move(pieces)), eog_(std::move(eog)) {
  usable_.assign(pieces_.size(), false);
  for (size_t i = 0; i < pieces_.size(); ++i)
    usable_[i] = !pieces_[i].empty() && std::find(eog_.begin(), eog_.end(), static_cast<int32_t>(i)) == eog_.end();
  build();
}

void TokenIndex::build() {
  // Tokens sorted by piece: a node's subtree is then one contiguous run, built recursively.
  std::vector<int32_t> order;
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (usable_[i]) order.push_back(static_cast<int32_t>(i));
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const auto& pa = pieces_[static_cast<size_t>(a)];
    const auto& pb = pieces_[static_cast<size_t>(b)];
    return pa != pb ? pa < pb : a < b;
  });
  // Iterative construction: (node, depth, [lo, hi) in order) work items; children of a node
  // are laid out contiguously when it is processed.
  struct Item {
    uint32_t node;
    size_t depth, lo, hi;
  };
  nodes_.assign(1, Node{});
  std::vector<Item> work{{0, 0, 0, order.size()}};
  while (!work.empty()) {
    const Item it = work.back();
    work.pop_back();
    size_t i = it.lo;
    Node& node = nodes_[it.node];
    node.token_begin = static_cast<uint32_t>(node_tokens_.size());
    while (i < it.hi && pieces_[static_cast<size_t>(order[i])].size() == it.depth) node_tokens_.push_back(order[i++]);
    nodes_[it.node].token_end = static_cast<uint32_t>(node_tokens_.size());
    nodes_[it.node].child_begin = static_cast<uint32_t>(child_byte_.size());
    std::vector<Item> kids;
    while (i < it.hi) {
      const uint8_t b = static_cast<uint8_t>(pieces_[static_cast<size_t>(order[i])][it.depth]);
      size_t j = i;
      while (j < it.hi && static_cast<uint8_t>(pieces_[static_cast<size_t>(order[j])][it.depth]) == b) ++j;
      const uint32_t child = static_cast<uint32_t>(nodes_.size());
      nodes_.push_back(Node{});
      child_byte_.push_back(b);
      child_node_.push_back(child);
      kids.push_back({child, it.depth + 1, i, j});
      i = j;
    }
    nodes_[it.node].child_end = static_cast<uint32_t>(child_byte_.size());
    work.insert(work.end(), kids.begin(), kids.end());
  }
}

}  // namespace zs::engine::structured
