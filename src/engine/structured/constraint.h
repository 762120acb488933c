#pragma once
// A grammar compiled against one vocabulary: a deterministic automaton over bytes, built lazily
// from the grammar's pushdown stacks (each distinct stack set is one state, each byte
// transition is computed once), and, per state, the sorted list of token ids allowed next,
// found by walking the vocabulary's byte trie (TokenIndex) along the automaton. After the
// first visit of a state, a decoding step costs one lookup for its allowed tokens and one
// table lookup per byte of the chosen token: no work proportional to the vocabulary.
// One Constraint is shared by every request with the same grammar (the worker caches them by
// the schema's hash); its lazy tables are guarded by a mutex, so it is safe to share.
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "engine/structured/grammar.h"
#include "engine/structured/token_index.h"

namespace zs::engine::structured {

class Constraint {
 public:
  static constexpr int32_t kDead = -1;

  // max_states bounds the automaton (1 KiB of transitions each); mask_budget_bytes bounds the
  // cached allowed-token lists (beyond it, lists are computed per step into the caller's scratch).
  Constraint(Grammar grammar, std::shared_ptr<const TokenIndex> index, size_t max_states = 65536,
             size_t mask_budget_bytes = size_t{64} << 20);

  int32_t start() const { return 0; }
  // The state after `byte` / after every byte of `token`'s piece; kDead when refused. An
  // end-of-generation token leaves an accepting state unchanged and kills any other.
  int32_t next_byte(int32_t state, uint8_t byte);
  int32_t next_token(int32_t state, int32_t token);
  bool accepting(int32_t state);
  // The tokens allowed in `state`, ascending; end-of-generation tokens when it is accepting.
  // The reference stays valid for the Constraint's lifetime, or, once the cached lists have
  // reached their memory budget, refers to `scratch` (computed anew) when one is given.
  const std::vector<int32_t>& allowed(int32_t state, std::vector<int32_t>* scratch = nullptr);
  // Whether `text` is a complete output (test helper; no vocabulary involved).
  bool matches(std::string_view text);

  const Grammar& grammar() const { return grammar_; }
  const TokenIndex& index() const { return *index_; }
  size_t n_states();

 private:
  static constexpr int32_t kUnknown = -2;
  struct State {
    std::vector<GrammarStacks::Stack> stacks;
    bool accepting = false;
    bool mask_ready = false;
    std::array<int32_t, 256> next;
    std::vector<int32_t> allowed;
  };
  int32_t intern(std::vector<GrammarStacks::Stack> stacks);
  int32_t step_locked(int32_t state, uint8_t byte);
  void compute_mask_locked(int32_t id, std::vector<int32_t>& out);

  Grammar grammar_;
  GrammarStacks stacks_;
  std::shared_ptr<const TokenIndex> index_;
  size_t max_states_;
  size_t mask_budget_;
  size_t mask_bytes_ = 0;
  std::mutex mutex_;
  std::vector<std::unique_ptr<State>> states_;
  std::vector<std::pair<uint64_t, int32_t>> lookup_;  // (hash, state), open addressing
  size_t lookup_used_ = 0;
};

}  // namespace zs::engine::structured
