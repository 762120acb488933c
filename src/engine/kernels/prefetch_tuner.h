#pragma once
// Chooses, on the machine it runs on, how far ahead the decode kernels prefetch the weights
// of long rows: one row tile ahead ("near"), or also the tile after it into L2 ("far").
//
// Why measure instead of deciding once: on bench-1b's 8192-wide rows the far reach streamed
// 1.2x faster on a Zen 4 host with ~35 GB/s of read bandwidth and slower on a Zen 5 host with
// ~50 GB/s (docs/engine.md, "Prefetch reach"). Which one pays depends on the memory system's
// latency against its bandwidth, which no CPU flag tells.
//
// How: after `warmup_calls` calls (the first ones fault pages in and fill caches), the calls
// on each matrix shape (told apart by the bytes they read) are given the two reaches in
// pairs of random order, so that neither a period in the caller's sequence of matrices nor a
// mix of fast and slow matrices favours one reach. Each call reports its time. Once both
// reaches have `samples` calls, the far reach is chosen for good if, over the shapes, the
// ratio of its median rate to the near reach's (a geometric mean weighted by the calls both
// reaches have on the shape) is at least 1.
//
// Contract: a pure class, handed the measurements; it reads no clock. Not thread-safe: the
// matmul driver holds it under a mutex, and only until it has decided.
#include <cstdint>
#include <vector>

namespace zs::engine::kernels {

enum class PrefetchReach : uint8_t { kNear = 0, kFar = 1 };

class PrefetchTuner {
 public:
  struct Options {
    int warmup_calls = 16;
    int samples = 32;  // per reach
    uint64_t seed = 0x9e3779b97f4a7c15ull;
  };
  PrefetchTuner();
  explicit PrefetchTuner(Options options);

  // The reach the next call, on a product reading `bytes` of weights, should use (the chosen
  // one once decided).
  PrefetchReach next(int64_t bytes);
  // One call made with `reach` read `bytes` in `ns` nanoseconds. Calls with ns <= 0 or
  // bytes <= 0 are ignored; so are calls after the decision.
  void record(PrefetchReach reach, int64_t bytes, int64_t ns);

  bool decided() const { return decided_; }
  // The chosen reach; kNear until decided.
  PrefetchReach choice() const { return choice_; }
  // Far rate / near rate: the weighted geometric mean over shapes of the ratio of medians
  // (1 without a shape both reaches were measured on).
  double far_gain() const;
  // Median GB/s (bytes per ns) over all the calls recorded for a reach; 0 without any.
  double median_gbps(PrefetchReach reach) const;
  int recorded(PrefetchReach reach) const { return count_[static_cast<int>(reach)]; }

 private:
  static constexpr int kMaxShapes = 64;  // further shapes are not measured
  struct Shape {
    int64_t bytes = 0;
    int64_t handed = 0;
    PrefetchReach pair_second = PrefetchReach::kNear;
    std::vector<double> rates[2];
  };
  Shape* shape(int64_t bytes, bool add);

  Options options_;
  uint64_t rng_;
  int64_t handed_ = 0;    // calls handed a reach, warm-up included
  int64_t reported_ = 0;  // calls reported, warm-up included
  std::vector<Shape> shapes_;
  int count_[2] = {0, 0};
  bool decided_ = false;
  PrefetchReach choice_ = PrefetchReach::kNear;
};

}  // namespace zs::engine::kernels
