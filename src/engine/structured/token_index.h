#pragma once
// The vocabulary as a byte trie, built once per model: token pieces (the bytes each token adds
// to the output) share their prefixes, so the tokens a constraint allows are found by walking
// the trie along the bytes the automaton accepts, pruning whole subtrees at the first byte it
// refuses, instead of testing every token of the vocabulary.
#include <cstdint>
#include <string>
#include <vector>

namespace zs::engine {
class Tokenizer;
}

namespace zs::engine::structured {

class TokenIndex {
 public:
  // Tokens whose piece is empty (control and unknown tokens, unless the tokenizer renders them
  // as text) are left out: they can never be part of constrained output. End-of-generation
  // tokens are listed apart.
  explicit TokenIndex(const Tokenizer& tok);
  // For tests: pieces given directly (token id = index), eog ids listed.
  TokenIndex(std::vector<std::string> pieces, std::vector<int32_t> eog);

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  const std::vector<int32_t>& eog() const { return eog_; }

  // Node 0 is the root (the empty prefix).
  struct Node {
    uint32_t child_begin = 0, child_end = 0;  // into child_byte / child_node
    uint32_t token_begin = 0, token_end = 0;  // into node_tokens: tokens whose piece ends here
  };
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<uint8_t>& child_byte() const { return child_byte_; }
  const std::vector<uint32_t>& child_node() const { return child_node_; }
  const std::vector<int32_t>& node_tokens() const { return node_tokens_; }

 private:
  void build();
  std::vector<std::string> pieces_;
  std::vector<int32_t> eog_;
  std::vector<bool> usable_;
  std::vector<Node> nodes_;
  std::vector<uint8_t> child_byte_;
  std::vector<uint32_t> child_node_;
  std::vector<int32_t> node_tokens_;
};

}  // namespace zs::engine::structured
