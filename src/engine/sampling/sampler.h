#pragma once
// Picks the next token from a row of logits: penalties -> top-k -> temperature -> softmax ->
// top-p -> min-p -> a draw from a seeded generator. One Sampler per sequence; not thread-safe.
#include <cstdint>
#include <deque>
#include <random>
#include <unordered_map>
#include <vector>

#include "engine/sampling/sampling_params.h"

namespace zs::engine {

// A double in [0, 1) from the top 53 bits of a 64-bit draw. std::mt19937_64's raw output is
// fixed by the standard, but std::uniform_real_distribution's is not, so we convert ourselves
// to get the same tokens for a seed on every platform and standard library.
inline double unit_interval_from_bits(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

class Sampler {
 public:
  // `params` should have passed validate(); out-of-range values are not checked again here.
  explicit Sampler(SamplingParams params);

  // The next token for `logits` (n_vocab values, not modified). Greedy when temperature <= 0.
  // Returns -1 only when n_vocab <= 0 or logits is null.
  int32_t sample(const float* logits, int32_t n_vocab);
  // The same, among `allowed` only (ascending token ids, e.g. a constraint's mask): the other
  // tokens are treated as having probability zero before top-k, top-p and min-p, so the draw
  // is from the distribution restricted to `allowed`. Costs O(|allowed|) plus the penalties,
  // not O(n_vocab). Returns -1 when `allowed` is empty.
  int32_t sample_among(const float* logits, int32_t n_vocab, const std::vector<int32_t>& allowed);

  // Records a token the sequence kept, for the penalties (the caller decides whether prompt
  // tokens count by accepting them too). Only the last repeat_last_n tokens are remembered.
  void accept(int32_t token);

  // OpenAI's logit_bias: added to the logits of these tokens before everything else (penalties
  // included). Out-of-range ids are ignored.
  void set_logit_bias(std::vector<std::pair<int32_t, float>> bias);

  // Forgets accepted tokens and restarts the generator from the seed, as if newly built.
  void reset();

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;  // unnormalized probability, set after temperature
  };

  bool penalties_active() const;
  void apply_penalties(float* logits, int32_t n_vocab) const;
  void select_top_k(const float* logits, int32_t n_vocab, int32_t k);
  void keep_top_p(double target_mass, bool sorted);
  int32_t draw();
  int32_t finish_sampling(bool sorted);
  int32_t first_best() const;  // the best candidate, lowest id on ties

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;                  // last repeat_last_n accepted tokens
  std::unordered_map<int32_t, int32_t> counts_;  // token -> occurrences in history_
  std::vector<std::pair<int32_t, float>> bias_;   // logit_bias, sorted by token
  // Scratch reused across calls so that sampling a 150k vocabulary does not allocate.
  std::vector<float> penalized_;
  std::vector<Candidate> candidates_;
};

}  // namespace zs::engine
