#include "engine/structured/constraint.h"

#include <algorithm>

namespace zs::engine::structured {

namespace {

uint64_t hash_stacks(const std::vector<GrammarStacks::Stack>& stacks) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 1099511628211ull;
  };
  for (const auto& s : stacks) {
    mix(s.size());
    for (uint32_t p : s) mix(p);
  }
  return h;
}

}  // namespace

Constraint::Constraint(Grammar grammar, std::shared_ptr<const TokenIndex> index, size_t max_states,
                       size_t mask_budget_bytes)
    : grammar_(std::move(grammar)),
      stacks_(grammar_),
      index_(std::move(index)),
      max_states_(max_states),
      mask_budget_(mask_budget_bytes) {
  lookup_.assign(1024, {0, -1});
  intern(stacks_.initial());
}

int32_t Constraint::intern(std::vector<GrammarStacks::Stack> stacks) {
  if (stacks.empty()) return kDead;
  const uint64_t h = hash_stacks(stacks);
  size_t mask = lookup_.size() - 1;
  size_t i = h & mask;
  while (lookup_[i].second >= 0) {
    if (lookup_[i].first == h && states_[static_cast<size_t>(lookup_[i].second)]->stacks == stacks)
      return lookup_[i].second;
    i = (i + 1) & mask;
  }
  if (states_.size() >= max_states_) return kDead;  // the automaton is as large as allowed
  auto s = std::make_unique<State>();
  s->accepting = GrammarStacks::accepting(stacks);
  s->stacks = std::move(stacks);
  s->next.fill(kUnknown);
  const int32_t id = static_cast<int32_t>(states_.size());
  states_.push_back(std::move(s));
  lookup_[i] = {h, id};
  if (++lookup_used_ * 2 > lookup_.size()) {  // grow and rehash
    std::vector<std::pair<uint64_t, int32_t>> bigger(lookup_.size() * 2, {0, -1});
    mask = bigger.size() - 1;
    for (const auto& e : lookup_) {
      if (e.second < 0) continue;
      size_t j = e.first & mask;
      while (bigger[j].second >= 0) j = (j + 1) & mask;
      bigger[j] = e;
    }
    lookup_.swap(bigger);
  }
  return id;
}

int32_t Constraint::step_locked(int32_t state, uint8_t byte) {
  if (state < 0) return kDead;
  int32_t n = states_[static_cast<size_t>(state)]->next[byte];
  if (n != kUnknown) return n;
  n = intern(stacks_.advance(states_[static_cast<size_t>(state)]->stacks, byte));
  states_[static_cast<size_t>(state)]->next[byte] = n;
  return n;
}

int32_t Constraint::next_byte(int32_t state, uint8_t byte) {
  std::lock_guard<std::mutex> lock(mutex_);
  return step_locked(state, byte);
}

int32_t Constraint::next_token(int32_t state, int32_t token) {
  if (state < 0 || token < 0 || token >= index_->n_vocab()) return kDead;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto& eog = index_->eog();
  if (std::find(eog.begin(), eog.end(), token) != eog.end())
    return states_[static_cast<size_t>(state)]->accepting ? state : kDead;
  const std::string& piece = index_->piece(token);
  if (piece.empty()) return kDead;
  for (char c : piece) {
    state = step_locked(state, static_cast<uint8_t>(c));
    if (state < 0) return kDead;
  }
  return state;
}

bool Constraint::accepting(int32_t state) {
  if (state < 0) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  return states_[static_cast<size_t>(state)]->accepting;
}

const std::vector<int32_t>& Constraint::allowed(int32_t state, std::vector<int32_t>* scratch) {
  static const std::vector<int32_t> kNone;
  if (state < 0) return kNone;
  std::lock_guard<std::mutex> lock(mutex_);
  State& s = *states_[static_cast<size_t>(state)];
  if (s.mask_ready) return s.allowed;
  if (scratch && mask_bytes_ >= mask_budget_) {
    compute_mask_locked(state, *scratch);
    return *scratch;
  }
  // `s` stays valid: states live behind unique_ptrs, so interning new ones moves nothing.
  compute_mask_locked(state, s.allowed);
  s.allowed.shrink_to_fit();
  s.mask_ready = true;
  mask_bytes_ += s.allowed.capacity() * sizeof(int32_t);
  return s.allowed;
}

void Constraint::compute_mask_locked(int32_t id, std::vector<int32_t>& out) {
  const auto& nodes = index_->nodes();
  const auto& cb = index_->child_byte();
  const auto& cn = index_->child_node();
  const auto& nt = index_->node_tokens();
  out.clear();
  std::vector<std::pair<uint32_t, int32_t>> work{{0u, id}};
  while (!work.empty()) {
    const auto [node, state] = work.back();
    work.pop_back();
    const TokenIndex::Node& nd = nodes[node];
    for (uint32_t c = nd.child_begin; c < nd.child_end; ++c) {
      const int32_t t = step_locked(state, cb[c]);
      if (t < 0) continue;
      const TokenIndex::Node& child = nodes[cn[c]];
      out.insert(out.end(), nt.begin() + child.token_begin, nt.begin() + child.token_end);
      work.push_back({cn[c], t});
    }
  }
  if (states_[static_cast<size_t>(id)]->accepting) out.insert(out.end(), index_->eog().begin(), index_->eog().end());
  std::sort(out.begin(), out.end());
}

bool Constraint::matches(std::string_view text) {
  int32_t s = start();
  for (char c : text) {
    s = next_byte(s, static_cast<uint8_t>(c));
    if (s < 0) return false;
  }
  return accepting(s);
}

size_t Constraint::n_states() {
  std::lock_guard<std::mutex> lock(mutex_);
  return states_.size();
}

}  // namespace zs::engine::structured
