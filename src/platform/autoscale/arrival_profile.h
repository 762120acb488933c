#pragma once
// What a deployment's traffic looks like by hour of day and by hour of the week: per bucket,
// the arrivals in that hour and the mean demand (in flight + queued) over it, each smoothed
// exponentially every time the hour comes round. Time is Unix time in UTC.
#include <array>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace zs::platform {

class ArrivalProfile {
 public:
  static constexpr double kHourS = 3600;
  static constexpr int kHoursPerWeek = 7 * 24;

  struct Bucket {
    double arrivals = 0;  // expected arrivals in the hour
    double demand = 0;    // expected mean demand over the hour
    int samples = 0;      // how many times the hour has been folded in
  };

  // `history_weight`: weight the old estimate keeps each time an hour is folded in (0..1).
  explicit ArrivalProfile(double history_weight) : history_weight_(history_weight) {}

  // Observations in time order; `demand` holds until the next one. An hour is folded in once
  // time has passed it; hours without observations fold in no arrivals at the demand held.
  void observe(double now_s, int arrivals, double demand);

  // The expectation for the hour holding `t_s`: its day-of-week bucket once that has been
  // seen `min_weeks` times, otherwise its hour-of-day bucket.
  Bucket expected(double t_s, int min_weeks) const;

  // "Mon 09:00 UTC" for the hour holding t_s.
  static std::string hour_label(double t_s);

  std::string serialize() const;
  core::Status parse(const std::string& text);

 private:
  void fold(int64_t hour, double arrivals, double mean_demand);
  void fold_bucket(Bucket& b, double arrivals, double mean_demand) const;

  double history_weight_;
  std::array<Bucket, kHoursPerWeek> week_{};
  std::array<Bucket, 24> day_{};
  // The hour being accumulated.
  bool open_ = false;
  int64_t hour_ = 0;
  double observed_from_s_ = 0;  // the first observation in it (a policy can start mid-hour)
  double arrivals_ = 0;
  double demand_integral_ = 0;
  double last_t_s_ = 0;
  double last_demand_ = 0;
};

}  // namespace zs::platform
