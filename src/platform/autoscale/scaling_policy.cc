#include "platform/autoscale/scaling_policy.h"

#include <cmath>

#include "platform/autoscale/concurrency_policy.h"
#include "platform/autoscale/fixed_policy.h"
#include "platform/autoscale/histogram_policy.h"
#include "platform/autoscale/hybrid_policy.h"
#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/predictive_policy.h"
#include "platform/autoscale/rules_policy.h"

namespace zs::platform {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Each check names the field as PolicyOptions spells it and the range it accepts.
struct Checker {
  std::string error;
  void check(bool ok, const char* field, double value, const char* range) {
    if (!ok && error.empty())
      error = std::string("autoscale option ") + field + " must be " + range + " (got " + short_number(value) + ")";
  }
  void positive(const char* field, double v) { check(std::isfinite(v) && v > 0, field, v, "> 0"); }
  void non_negative(const char* field, double v) { check(std::isfinite(v) && v >= 0, field, v, ">= 0"); }
  void fraction(const char* field, double v) { check(v >= 0 && v <= 1, field, v, "between 0 and 1"); }
};

}  // namespace

const std::vector<std::string>& scaling_policy_names() {
  static const std::vector<std::string> kNames = {"hybrid", "concurrency", "rules", "fixed", "histogram", "predictive"};
  return kNames;
}

core::Status validate_policy_options(const PolicyOptions& p) {
  Checker c;
  c.non_negative("target_concurrency", p.target_concurrency);
  c.non_negative("evaluation_interval_s", p.evaluation_interval_s);
  c.non_negative("prewarm_lead_s", p.prewarm_lead_s);
  c.positive("stable_window_s", p.stable_window_s);
  c.positive("panic_window_s", p.panic_window_s);
  c.check(p.panic_window_s <= p.stable_window_s, "panic_window_s", p.panic_window_s, "<= stable_window_s");
  c.positive("panic_threshold", p.panic_threshold);
  c.non_negative("scale_down_delay_s", p.scale_down_delay_s);
  c.check(p.max_scale_up_rate > 1, "max_scale_up_rate", p.max_scale_up_rate, "> 1");
  c.check(p.max_scale_down_rate > 1, "max_scale_down_rate", p.max_scale_down_rate, "> 1");
  c.non_negative("rules_queue_threshold", p.rules_queue_threshold);
  c.positive("rules_queue_window_s", p.rules_queue_window_s);
  c.fraction("rules_high_utilization", p.rules_high_utilization);
  c.non_negative("rules_high_for_s", p.rules_high_for_s);
  c.check(p.rules_ttft_factor >= 1, "rules_ttft_factor", p.rules_ttft_factor, ">= 1");
  c.positive("rules_scale_out_fraction", p.rules_scale_out_fraction);
  c.non_negative("rules_scale_out_cooldown_s", p.rules_scale_out_cooldown_s);
  c.fraction("rules_low_utilization", p.rules_low_utilization);
  c.check(p.rules_low_utilization < p.rules_high_utilization, "rules_low_utilization", p.rules_low_utilization,
          "< rules_high_utilization");
  c.fraction("rules_scale_in_fraction", p.rules_scale_in_fraction);
  c.non_negative("rules_scale_in_interval_s", p.rules_scale_in_interval_s);
  c.fraction("rules_warm_fraction", p.rules_warm_fraction);
  c.positive("histogram_bin_s", p.histogram_bin_s);
  c.check(p.histogram_range_s >= p.histogram_bin_s && p.histogram_range_s / p.histogram_bin_s <= 1e6,
          "histogram_range_s", p.histogram_range_s, "at least one and at most 1e6 bins");
  c.check(p.histogram_head_percentile > 0 && p.histogram_head_percentile < p.histogram_tail_percentile,
          "histogram_head_percentile", p.histogram_head_percentile, "> 0 and < histogram_tail_percentile");
  c.check(p.histogram_tail_percentile <= 100, "histogram_tail_percentile", p.histogram_tail_percentile, "<= 100");
  c.fraction("histogram_margin", p.histogram_margin);
  c.non_negative("histogram_cv_threshold", p.histogram_cv_threshold);
  c.non_negative("histogram_min_samples", p.histogram_min_samples);
  c.fraction("histogram_max_oob_fraction", p.histogram_max_oob_fraction);
  c.non_negative("hybrid_cold_start_cost_s", p.hybrid_cold_start_cost_s);
  c.non_negative("hybrid_scale_in_delay_s", p.hybrid_scale_in_delay_s);
  c.check(p.hybrid_range_s >= p.histogram_bin_s && p.hybrid_range_s / p.histogram_bin_s <= 1e6, "hybrid_range_s",
          p.hybrid_range_s, "at least one and at most 1e6 bins of histogram_bin_s");
  c.non_negative("predictive_threshold", p.predictive_threshold);
  c.fraction("predictive_history_weight", p.predictive_history_weight);
  c.non_negative("predictive_min_weeks", p.predictive_min_weeks);
  return c.error.empty() ? core::Status::ok() : core::Status::error(c.error);
}

core::Result<std::unique_ptr<ScalingPolicy>> make_scaling_policy(const std::string& name, const PolicyOptions& options) {
  ZS_RETURN_IF_ERROR(validate_policy_options(options));
  std::unique_ptr<ScalingPolicy> p;
  if (name == kDefaultScalingPolicy || name.empty()) p = std::make_unique<HybridPolicy>(options);
  else if (name == "concurrency") p = std::make_unique<ConcurrencyPolicy>(options);
  else if (name == "rules") p = std::make_unique<RulesPolicy>(options);
  else if (name == "fixed") p = std::make_unique<FixedPolicy>(options);
  else if (name == "histogram") p = std::make_unique<HistogramPolicy>(options);
  else if (name == "predictive") p = std::make_unique<PredictivePolicy>(options);
  else return core::Status::error("unknown autoscale policy '" + name + "' (known: " + join(scaling_policy_names()) + ")");
  return p;
}

}  // namespace zs::platform
