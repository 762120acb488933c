#include "engine/kernels/prefetch_tuner.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace zs::engine::kernels {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  if (v.size() % 2 == 1) return v[mid];
  const double hi = v[mid];
  return (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)) + hi) / 2;
}

}  // namespace

PrefetchTuner::PrefetchTuner() : PrefetchTuner(Options{}) {}

PrefetchTuner::PrefetchTuner(Options options) : options_(options), rng_(options.seed) {
  options_.samples = std::max(1, options_.samples);
  options_.warmup_calls = std::max(0, options_.warmup_calls);
}

PrefetchTuner::Shape* PrefetchTuner::shape(int64_t bytes, bool add) {
  for (Shape& s : shapes_)
    if (s.bytes == bytes) return &s;
  if (!add || static_cast<int>(shapes_.size()) >= kMaxShapes) return nullptr;
  shapes_.push_back(Shape{});
  shapes_.back().bytes = bytes;
  return &shapes_.back();
}

PrefetchReach PrefetchTuner::next(int64_t bytes) {
  if (decided_) return choice_;
  if (handed_++ < options_.warmup_calls) return PrefetchReach::kNear;
  Shape* s = shape(bytes, true);
  if (s == nullptr) return PrefetchReach::kNear;
  if (s->handed++ % 2 == 1) return s->pair_second;
  const PrefetchReach first = (splitmix64(rng_) & 1) ? PrefetchReach::kFar : PrefetchReach::kNear;
  s->pair_second = first == PrefetchReach::kFar ? PrefetchReach::kNear : PrefetchReach::kFar;
  return first;
}

void PrefetchTuner::record(PrefetchReach reach, int64_t bytes, int64_t ns) {
  if (decided_ || bytes <= 0 || ns <= 0) return;
  if (reported_++ < options_.warmup_calls) return;
  Shape* s = shape(bytes, false);
  if (s == nullptr) return;
  s->rates[static_cast<int>(reach)].push_back(static_cast<double>(bytes) / static_cast<double>(ns));
  ++count_[static_cast<int>(reach)];
  if (count_[0] >= options_.samples && count_[1] >= options_.samples) {
    choice_ = far_gain() >= 1.0 ? PrefetchReach::kFar : PrefetchReach::kNear;
    decided_ = true;
  }
}

double PrefetchTuner::far_gain() const {
  double sum = 0, weight = 0;
  for (const Shape& s : shapes_) {
    const auto& near = s.rates[static_cast<int>(PrefetchReach::kNear)];
    const auto& far = s.rates[static_cast<int>(PrefetchReach::kFar)];
    const double w = static_cast<double>(std::min(near.size(), far.size()));
    if (w == 0) continue;
    sum += w * std::log(median(far) / median(near));
    weight += w;
  }
  return weight > 0 ? std::exp(sum / weight) : 1.0;
}

double PrefetchTuner::median_gbps(PrefetchReach reach) const {
  std::vector<double> all;
  for (const Shape& s : shapes_) {
    const auto& v = s.rates[static_cast<int>(reach)];
    all.insert(all.end(), v.begin(), v.end());
  }
  return median(std::move(all));
}

}  // namespace zs::engine::kernels
