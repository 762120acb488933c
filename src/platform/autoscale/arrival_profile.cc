#include "platform/autoscale/arrival_profile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace zs::platform {
namespace {

constexpr const char* kHeader = "zs-arrival-profile v1";
// A gap longer than this between observations folds in only this many empty hours: by then
// every bucket has decayed towards "no traffic" as far as it usefully can.
constexpr int64_t kMaxEmptyHours = 4 * ArrivalProfile::kHoursPerWeek;
// A first, partial hour shorter than this says too little to be scaled up to an hour.
constexpr double kMinPartialS = 600;

int64_t hour_of(double t_s) { return static_cast<int64_t>(std::floor(t_s / ArrivalProfile::kHourS)); }
int64_t floor_mod(int64_t a, int64_t m) { return ((a % m) + m) % m; }
// Monday = 0; 1970-01-01 (Unix day 0) was a Thursday.
int week_index(int64_t hour) {
  const int64_t day = hour >= 0 ? hour / 24 : -((-hour + 23) / 24);
  return static_cast<int>(floor_mod(day + 3, 7) * 24 + floor_mod(hour, 24));
}

}  // namespace

void ArrivalProfile::fold_bucket(Bucket& b, double arrivals, double mean_demand) const {
  if (b.samples == 0) {
    b.arrivals = arrivals;
    b.demand = mean_demand;
  } else {
    b.arrivals = history_weight_ * b.arrivals + (1 - history_weight_) * arrivals;
    b.demand = history_weight_ * b.demand + (1 - history_weight_) * mean_demand;
  }
  b.samples = std::min(b.samples + 1, 1 << 20);
}

void ArrivalProfile::fold(int64_t hour, double arrivals, double mean_demand) {
  fold_bucket(week_[week_index(hour)], arrivals, mean_demand);
  fold_bucket(day_[floor_mod(hour, 24)], arrivals, mean_demand);
}

void ArrivalProfile::observe(double now_s, int arrivals, double demand) {
  if (open_ && now_s < last_t_s_) open_ = false;  // the clock stepped back: start a new hour
  const int64_t hour = hour_of(now_s);
  if (!open_) {
    open_ = true;
    hour_ = hour;
    observed_from_s_ = last_t_s_ = now_s;
    arrivals_ = demand_integral_ = 0;
    last_demand_ = demand;
  }
  if (hour > hour_) {
    const double end = (hour_ + 1) * kHourS;
    demand_integral_ += last_demand_ * (end - last_t_s_);
    const double observed = end - observed_from_s_;
    if (observed >= kMinPartialS) {
      const double scale = kHourS / observed;
      fold(hour_, arrivals_ * scale, demand_integral_ / observed);
    }
    const int64_t empty = std::min(hour - hour_ - 1, kMaxEmptyHours);
    for (int64_t k = hour - empty; k < hour; ++k) fold(k, 0, last_demand_);
    hour_ = hour;
    observed_from_s_ = last_t_s_ = hour * kHourS;
    arrivals_ = demand_integral_ = 0;
  }
  demand_integral_ += last_demand_ * (now_s - last_t_s_);
  last_t_s_ = now_s;
  last_demand_ = demand;
  arrivals_ += std::max(0, arrivals);
}

ArrivalProfile::Bucket ArrivalProfile::expected(double t_s, int min_weeks) const {
  const int64_t hour = hour_of(t_s);
  const Bucket& w = week_[week_index(hour)];
  if (w.samples >= std::max(1, min_weeks)) return w;
  return day_[floor_mod(hour, 24)];
}

std::string ArrivalProfile::hour_label(double t_s) {
  static const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  const int idx = week_index(hour_of(t_s));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s %02d:00 UTC", kDays[idx / 24], idx % 24);
  return buf;
}

std::string ArrivalProfile::serialize() const {
  std::ostringstream out;
  out << kHeader << '\n';
  char buf[128];
  auto write = [&](char kind, size_t i, const Bucket& b) {
    if (b.samples == 0) return;
    std::snprintf(buf, sizeof buf, "%c %zu %.17g %.17g %d\n", kind, i, b.arrivals, b.demand, b.samples);
    out << buf;
  };
  for (size_t i = 0; i < week_.size(); ++i) write('w', i, week_[i]);
  for (size_t i = 0; i < day_.size(); ++i) write('d', i, day_[i]);
  return out.str();
}

core::Status ArrivalProfile::parse(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeader)
    return core::Status::error("not an arrival profile (expected first line '" + std::string(kHeader) + "')");
  std::array<Bucket, kHoursPerWeek> week{};
  std::array<Bucket, 24> day{};
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    char kind = 0;
    size_t i = 0;
    Bucket b;
    std::istringstream fields(line);
    fields >> kind >> i >> b.arrivals >> b.demand >> b.samples;
    const size_t limit = kind == 'w' ? week.size() : kind == 'd' ? day.size() : 0;
    if (fields.fail() || i >= limit || b.samples < 0 || !(b.arrivals >= 0) || !(b.demand >= 0))
      return core::Status::error("arrival profile: bad line '" + line +
                                 "' (expected 'w|d <hour> <arrivals> <demand> <samples>')");
    (kind == 'w' ? week[i] : day[i]) = b;
  }
  week_ = week;
  day_ = day;
  return core::Status::ok();
}

}  // namespace zs::platform
