#pragma once
// "concurrency": Knative's KPA. Demand (in flight + queued) is averaged over a stable window
// (60 s) and a panic window (6 s); the count is ceil(average / target per instance). When the
// panic window's demand reaches panic_threshold x the ready capacity, the policy panics: it
// follows the short window at once and never scales down until a whole stable window passes
// without the panic condition. Scale-up and scale-down per evaluation are rate-limited, and the
// last instance leaves only after keep_alive without traffic (Knative's scale-to-zero grace).
#include <deque>

#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/scaling_policy.h"
#include "platform/autoscale/time_window.h"

namespace zs::platform {

class ConcurrencyPolicy final : public ScalingPolicy {
 public:
  explicit ConcurrencyPolicy(const PolicyOptions& options);
  std::string_view name() const override { return "concurrency"; }
  ScalingDecision decide(const DeploymentObservation& o) override;

  bool panicking() const { return panicking_; }

 private:
  // Why an evaluation chose its count, kept as numbers and written out only when a decision
  // is reported (most evaluations change nothing, and formatting costs more than deciding).
  struct Why {
    enum class Kind { kStable, kPanic, kScaleToZero, kColdStart, kKeepOne } kind = Kind::kStable;
    double demand = 0, window_s = 0, target = 0, quiet_s = 0;
    int waiting = 0, held = 0;  // held: what the scale-down delay holds (> the count), else 0
    bool rate_limited = false;
    std::string text(const DeploymentObservation& o) const;
  };
  // The count to hold until the next evaluation; `why` explains it, `transition` names a
  // panic entered or left.
  int evaluate(const DeploymentObservation& o, Why& why, std::string& transition);

  PolicyOptions options_;
  TimeWeightedWindow demand_;
  Cadence cadence_;
  bool seen_ = false;
  double last_active_s_ = 0;  // last time anything was in flight, queued or arriving
  bool panicking_ = false;
  double last_over_s_ = 0;    // last evaluation that met the panic condition
  int max_panic_ = 0;         // highest count while panicking: panic never scales down
  struct Recommendation {
    double t;
    int count;
  };
  std::deque<Recommendation> recent_;  // for the scale-down delay
  int desired_ = 0;
};

}  // namespace zs::platform
