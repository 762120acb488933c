#pragma once
// "rules": threshold rules as in classic cloud autoscalers. Scale out by a fraction of the
// current count when the queue averaged over a short window exceeds a depth, when utilisation
// (in flight / (ready x slots)) stays high for a while, or when the TTFT p95 misses the
// objective by a margin; at most once per cooldown and never while an instance still starts.
// Scale in one step (a fraction, at least 1) per interval while utilisation stays low, keeping
// the busy instances plus a warm spare; to zero only after keep_alive without traffic.
#include <optional>

#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/scaling_policy.h"
#include "platform/autoscale/time_window.h"

namespace zs::platform {

class RulesPolicy final : public ScalingPolicy {
 public:
  explicit RulesPolicy(const PolicyOptions& options);
  std::string_view name() const override { return "rules"; }
  ScalingDecision decide(const DeploymentObservation& o) override;

 private:
  // The scale-out rule that holds now, as a reason; "" when none.
  std::string scale_out_trigger(const DeploymentObservation& o) const;

  PolicyOptions options_;
  TimeWeightedWindow queue_;
  Cadence cadence_;
  bool started_ = false;
  int count_ = 0;  // the count the rules have stepped to
  double last_active_s_ = 0;
  double last_scale_out_s_ = 0;
  double last_scale_in_s_ = 0;
  std::optional<double> high_since_;  // utilisation above the high mark since then
  std::optional<double> low_since_;   // utilisation below the low mark (and no queue) since then
};

}  // namespace zs::platform
