#pragma once
// A small, fast, seedable generator (SplitMix64) with the draws the simulator needs. Its own
// rather than <random>'s distributions, whose output differs between standard libraries: a
// seed must give the same simulation everywhere.
#include <cmath>
#include <cstdint>

namespace zs::sim {

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double exponential(double rate) { return -std::log1p(-uniform()) / rate; }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }

 private:
  uint64_t state_;
};

// The n-th point of the golden-ratio sequence in [0, 1): evenly spread for any run of
// consecutive n, so that a few dozen draws through Spread::at already follow the measured
// distribution (independent random draws would scatter the simulated median by several
// percent at that size).
inline double even_quantile(uint64_t n) {
  const double x = 0.5 + static_cast<double>(n) * 0.6180339887498949;
  return x - std::floor(x);
}

}  // namespace zs::sim
