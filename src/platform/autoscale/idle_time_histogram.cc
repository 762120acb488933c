#include "platform/autoscale/idle_time_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace zs::platform {
namespace {

constexpr const char* kHeader = "zs-idle-histogram v1";

}  // namespace

IdleTimeHistogram::IdleTimeHistogram(double bin_s, double range_s)
    : bin_s_(bin_s > 0 ? bin_s : 60),
      counts_(std::max<size_t>(1, static_cast<size_t>(std::ceil(range_s / (bin_s > 0 ? bin_s : 60))))) {}

void IdleTimeHistogram::add(double idle_s) {
  if (!(idle_s >= 0)) idle_s = 0;  // NaN or a clock that stepped back: the shortest bin
  const double bin = std::floor(idle_s / bin_s_);
  if (bin >= static_cast<double>(counts_.size())) {
    ++out_of_bounds_;
    return;
  }
  ++counts_[static_cast<size_t>(bin)];
  ++in_range_;
}

double IdleTimeHistogram::coefficient_of_variation() const {
  if (in_range_ == 0) return 0;
  const double n = static_cast<double>(counts_.size());
  const double mean = static_cast<double>(in_range_) / n;
  double sq = 0;
  for (uint64_t c : counts_) sq += (c - mean) * (c - mean);
  return std::sqrt(sq / n) / mean;
}

double IdleTimeHistogram::coefficient_of_variation_up_to_longest() const {
  if (in_range_ == 0) return 0;
  size_t used = 0;
  for (size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i] > 0) used = i + 1;
  const double n = static_cast<double>(used);
  const double mean = static_cast<double>(in_range_) / n;
  double sq = 0;
  for (size_t i = 0; i < used; ++i) sq += (counts_[i] - mean) * (counts_[i] - mean);
  return std::sqrt(sq / n) / mean;
}

size_t IdleTimeHistogram::percentile_bin(double p) const {
  const double wanted = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(in_range_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i];
    if (counts_[i] > 0 && static_cast<double>(cumulative) >= wanted) return i;
  }
  return counts_.size() - 1;
}

double IdleTimeHistogram::percentile_lower_edge_s(double p) const { return percentile_bin(p) * bin_s_; }
double IdleTimeHistogram::percentile_upper_edge_s(double p) const { return (percentile_bin(p) + 1) * bin_s_; }

std::string IdleTimeHistogram::serialize() const {
  std::ostringstream out;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", bin_s_);
  out << kHeader << "\nbin_s " << buf << "\nbins " << counts_.size() << "\nout_of_bounds " << out_of_bounds_
      << "\ncounts";
  for (size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i] > 0) out << ' ' << i << ':' << counts_[i];
  out << '\n';
  return out.str();
}

core::Status IdleTimeHistogram::parse(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeader)
    return core::Status::error("not an idle-time histogram (expected first line '" + std::string(kHeader) + "')");
  double bin_s = 0;
  uint64_t bins = 0, oob = 0;
  std::vector<std::pair<uint64_t, uint64_t>> pairs;
  bool have_counts = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "bin_s") {
      fields >> bin_s;
    } else if (key == "bins") {
      fields >> bins;
    } else if (key == "out_of_bounds") {
      fields >> oob;
    } else if (key == "counts") {
      have_counts = true;
      std::string pair;
      while (fields >> pair) {
        const auto colon = pair.find(':');
        unsigned long long bin = 0, count = 0;
        if (colon == std::string::npos || std::sscanf(pair.c_str(), "%llu:%llu", &bin, &count) != 2 || bin >= bins)
          return core::Status::error("idle-time histogram: bad count '" + pair + "' (expected bin:count, bin < " +
                                     std::to_string(bins) + ")");
        pairs.emplace_back(bin, count);
      }
      continue;
    } else {
      return core::Status::error("idle-time histogram: unknown line '" + line + "'");
    }
    if (fields.fail()) return core::Status::error("idle-time histogram: bad value in '" + line + "'");
  }
  if (!(bin_s > 0) || bins == 0 || !have_counts)
    return core::Status::error("idle-time histogram: bin_s, bins and counts are required");
  std::fill(counts_.begin(), counts_.end(), 0);
  in_range_ = 0;
  out_of_bounds_ = oob;
  for (auto [bin, count] : pairs) {
    const double centre = (bin + 0.5) * bin_s;  // re-bin when the options changed since the save
    const double mine = std::floor(centre / bin_s_);
    if (mine >= static_cast<double>(counts_.size())) {
      out_of_bounds_ += count;
    } else {
      counts_[static_cast<size_t>(mine)] += count;
      in_range_ += count;
    }
  }
  return core::Status::ok();
}

}  // namespace zs::platform
