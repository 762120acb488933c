#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace zs::engine {
namespace {

// First window for top-p without top-k: most distributions reach top_p within the best
// thousand tokens, so we partially sort that much and grow only when needed, instead of
// sorting a 150k vocabulary.
constexpr size_t kTopPInitialWindow = 1024;
constexpr size_t kTopPWindowGrowth = 8;

// A strict total order (higher logit first, lower id on ties), so every selection and sort
// gives the same sequence on every standard library, which keeps seeded runs reproducible.
struct Better {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

// NaN would break the ordering above; a NaN logit is treated as "never pick".
float sanitize(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }

int32_t argmax(const float* logits, int32_t n) {
  // Two passes, the maximum then its first index: a single running (value, index) pair
  // compiles to a dependent compare/select chain that is several times slower on a 150k
  // vocabulary, while the max over independent lanes runs at memory speed.
  // NaN compares false, so it is never the maximum.
  constexpr int kLanes = 8;
  float lane_max[kLanes];
  for (float& m : lane_max) m = -std::numeric_limits<float>::infinity();
  int32_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float v = logits[i + j];
      lane_max[j] = v > lane_max[j] ? v : lane_max[j];
    }
  }
  float m = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) m = logits[i] > m ? logits[i] : m;
  for (float lm : lane_max) m = lm > m ? lm : m;
  for (int32_t k = 0; k < n; ++k) {
    if (logits[k] == m) return k;  // the lowest id wins ties
  }
  return 0;  // every logit is NaN (or -inf): any choice is as good
}

}  // namespace

Sampler::Sampler(SamplingParams params) : params_(params), rng_(params.seed) {}

void Sampler::set_logit_bias(std::vector<std::pair<int32_t, float>> bias) {
  bias_ = std::move(bias);
  std::sort(bias_.begin(), bias_.end());
}

void Sampler::reset() {
  history_.clear();
  counts_.clear();
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  if (params_.repeat_last_n <= 0) return;
  history_.push_back(token);
  ++counts_[token];
  if (history_.size() > static_cast<size_t>(params_.repeat_last_n)) {
    int32_t old = history_.front();
    history_.pop_front();
    auto it = counts_.find(old);
    if (--it->second == 0) counts_.erase(it);
  }
}

bool Sampler::penalties_active() const {
  return !counts_.empty() && (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0 ||
                              params_.presence_penalty != 0);
}

void Sampler::apply_penalties(float* logits, int32_t n_vocab) const {
  for (const auto& [token, count] : counts_) {
    if (token < 0 || token >= n_vocab) continue;
    float& l = logits[token];
    // llama.cpp's repetition penalty: dividing a negative logit would raise it, so negative
    // logits are multiplied instead; both make the token less likely.
    if (l > 0) {
      l /= params_.repeat_penalty;
    } else {
      l *= params_.repeat_penalty;
    }
    // OpenAI's frequency and presence penalties.
    l -= static_cast<float>(count) * params_.frequency_penalty +
         (count > 0 ? params_.presence_penalty : 0.0f);
  }
}

void Sampler::select_top_k(const float* logits, int32_t n_vocab, int32_t k) {
  // A heap of the k best seen so far, worst on top: one pass, O(n log k), no full copy.
  candidates_.clear();
  candidates_.reserve(static_cast<size_t>(k));
  Better better;
  const int32_t fill = std::min(k, n_vocab);
  for (int32_t i = 0; i < fill; ++i) {
    candidates_.push_back({i, sanitize(logits[i]), 0.0f});
    std::push_heap(candidates_.begin(), candidates_.end(), better);
  }
  // Ids only grow, so a later token beats the worst kept one only with a strictly greater
  // logit; comparing against a cached float keeps this loop, which sees the whole
  // vocabulary, to one well-predicted branch per token (NaN compares false).
  float worst = candidates_.front().logit;
  for (int32_t i = fill; i < n_vocab; ++i) {
    if (logits[i] > worst) {
      std::pop_heap(candidates_.begin(), candidates_.end(), better);
      candidates_.back() = {i, logits[i], 0.0f};
      std::push_heap(candidates_.begin(), candidates_.end(), better);
      worst = candidates_.front().logit;
    }
  }
  std::sort_heap(candidates_.begin(), candidates_.end(), better);  // best first
}

void Sampler::keep_top_p(double target_mass, bool sorted) {
  const size_t n = candidates_.size();
  size_t window = sorted ? n : std::min(n, kTopPInitialWindow);
  while (true) {
    if (!sorted) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(window),
                        candidates_.end(), Better{});
    }
    double cum = 0;
    for (size_t i = 0; i < window; ++i) {
      cum += candidates_[i].p;
      if (cum >= target_mass) {
        candidates_.resize(i + 1);  // keep the token that crosses the mass, as llama.cpp does
        return;
      }
    }
    if (window == n) return;  // rounding left the mass just short: keep everything
    window = std::min(n, window * kTopPWindowGrowth);
  }
}

int32_t Sampler::draw() {
  double total = 0;
  for (const Candidate& c : candidates_) total += c.p;
  const double r = unit_interval_from_bits(rng_()) * total;
  double cum = 0;
  for (const Candidate& c : candidates_) {
    cum += c.p;
    if (r < cum) return c.id;
  }
  return candidates_.back().id;  // r landed on the rounding slack at the very end
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab) {
  if (logits == nullptr || n_vocab <= 0) return -1;
  if (penalties_active() || !bias_.empty()) {
    penalized_.assign(logits, logits + n_vocab);
    for (const auto& [token, b] : bias_)
      if (token >= 0 && token < n_vocab) penalized_[static_cast<size_t>(token)] += b;
    if (penalties_active()) apply_penalties(penalized_.data(), n_vocab);
    logits = penalized_.data();
  }
  if (params_.temperature <= 0) return argmax(logits, n_vocab);

  bool sorted = false;
  if (params_.top_k > 0 && params_.top_k < n_vocab) {
    select_top_k(logits, n_vocab, params_.top_k);
    sorted = true;
  } else {
    candidates_.resize(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) candidates_[i] = {i, sanitize(logits[i]), 0.0f};
  }

  return finish_sampling(sorted);
}

int32_t Sampler::finish_sampling(bool sorted) {
  float max_logit = sorted ? candidates_.front().logit : -std::numeric_limits<float>::infinity();
  if (!sorted) {
    for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  }
  if (!std::isfinite(max_logit)) return candidates_.empty() ? -1 : first_best();  // nothing has finite weight

  // Softmax, unnormalized: the best token has weight exp(0) = 1, so min-p's threshold
  // (min_p times the best probability) is simply min_p in these units.
  const float inv_temp = 1.0f / params_.temperature;
  if (!std::isfinite(inv_temp)) return first_best();  // so cold it is greedy
  double sum = 0;
  for (Candidate& c : candidates_) {
    c.p = std::exp((c.logit - max_logit) * inv_temp);
    sum += c.p;
  }

  // min-p before top-p gives the same set as top-p then min-p (both keep a best-first prefix,
  // and top-p below uses the mass before min-p), and shrinks what top-p has to sort.
  if (params_.min_p > 0) {
    const float threshold = params_.min_p;
    std::erase_if(candidates_, [threshold](const Candidate& c) { return c.p < threshold; });
  }
  if (params_.top_p < 1.0f) keep_top_p(static_cast<double>(params_.top_p) * sum, sorted);
  return draw();
}

int32_t Sampler::first_best() const {
  Candidate best = candidates_.front();
  for (const Candidate& c : candidates_)
    if (Better{}(c, best)) best = c;
  return best.id;
}

int32_t Sampler::sample_among(const float* logits, int32_t n_vocab, const std::vector<int32_t>& allowed) {
  if (logits == nullptr || n_vocab <= 0 || allowed.empty()) return -1;
  candidates_.resize(allowed.size());
  for (size_t i = 0; i < allowed.size(); ++i) candidates_[i] = {allowed[i], sanitize(logits[allowed[i]]), 0.0f};
  if (!bias_.empty()) {
    // Candidates are in ascending id order, as `allowed` is: merge the (sorted) bias in.
    size_t b = 0;
    for (Candidate& c : candidates_) {
      while (b < bias_.size() && bias_[b].first < c.id) ++b;
      if (b < bias_.size() && bias_[b].first == c.id) c.logit += bias_[b].second;
    }
  }
  if (penalties_active()) {
    // Only the penalized tokens change, as in apply_penalties(): find each in the (id-sorted)
    // candidates rather than looking every candidate up.
    for (const auto& [token, count] : counts_) {
      auto it = std::lower_bound(candidates_.begin(), candidates_.end(), token,
                                 [](const Candidate& c, int32_t id) { return c.id < id; });
      if (it == candidates_.end() || it->id != token) continue;
      float& l = it->logit;
      if (l > 0) l /= params_.repeat_penalty;
      else l *= params_.repeat_penalty;
      l -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
    }
  }
  if (params_.temperature <= 0) return first_best();
  bool sorted = false;
  const size_t k = params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : candidates_.size();
  if (k < candidates_.size()) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(k), candidates_.end(), Better{});
    candidates_.resize(k);
    sorted = true;
  }
  return finish_sampling(sorted);
}

}  // namespace zs::engine
