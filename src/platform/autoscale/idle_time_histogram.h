#pragma once
// A range-limited histogram of idle times (the gap between the end of one burst of requests
// and the next arrival), as kept per application by the hybrid policy of "Serverless in the
// Wild" (Shahrad et al., ATC'20): fixed-width bins up to a range, plus a count of idle times
// beyond the range ("out of bounds").
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace zs::platform {

class IdleTimeHistogram {
 public:
  IdleTimeHistogram(double bin_s, double range_s);

  void add(double idle_s);

  uint64_t in_range() const { return in_range_; }
  uint64_t out_of_bounds() const { return out_of_bounds_; }
  uint64_t total() const { return in_range_ + out_of_bounds_; }
  double bin_s() const { return bin_s_; }
  size_t bins() const { return counts_.size(); }
  uint64_t count(size_t bin) const { return counts_[bin]; }

  // Coefficient of variation (stddev / mean) of the bin counts: high when idle times gather in
  // a few bins (a pattern), low when they spread evenly; 0 when empty.
  double coefficient_of_variation() const;
  // The same over the bins from the first to the last that holds an idle time: the bins past
  // the longest idle time seen say nothing about how concentrated the idle times are (with
  // them, a few idle times spread evenly over an hour still look like a pattern).
  double coefficient_of_variation_up_to_longest() const;

  // Edges of the bin holding the p-th percentile (0 < p <= 100) of the in-range idle times.
  double percentile_lower_edge_s(double p) const;
  double percentile_upper_edge_s(double p) const;

  // Plain text, one "key value" per line; counts as sparse "bin:count" pairs.
  std::string serialize() const;
  // Reads serialize()'s text. Bins of another width or range are re-binned by their centres;
  // idle times beyond this histogram's range become out of bounds.
  core::Status parse(const std::string& text);

 private:
  size_t percentile_bin(double p) const;

  double bin_s_;
  std::vector<uint64_t> counts_;
  uint64_t in_range_ = 0;
  uint64_t out_of_bounds_ = 0;
};

}  // namespace zs::platform
