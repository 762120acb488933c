#pragma once
// "predictive": schedule-aware pre-warming from the deployment's own history. An arrival
// profile by hour of day and hour of week (exponentially smoothed) says what the hour holding
// now, and the hour holding now + prewarm_lead_s, usually bring. When either is expected to
// bring at least predictive_threshold arrivals, the policy keeps at least
// max(1, ceil(expected mean demand / target)) instances, started ahead of time; everything
// else, and everything above that floor, is the concurrency policy's.
#include "platform/autoscale/arrival_profile.h"
#include "platform/autoscale/concurrency_policy.h"
#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/scaling_policy.h"

namespace zs::platform {

class PredictivePolicy final : public ScalingPolicy {
 public:
  explicit PredictivePolicy(const PolicyOptions& options);
  std::string_view name() const override { return "predictive"; }
  ScalingDecision decide(const DeploymentObservation& o) override;
  std::string save_state() const override { return profile_.serialize(); }
  core::Status restore_state(const std::string& state) override;

  // The floor the profile asks for at `now_s` (0: none), and why.
  int forecast_floor(double now_s, const DeploymentObservation& o, std::string* why) const;
  const ArrivalProfile& profile() const { return profile_; }

 private:
  PolicyOptions options_;
  ArrivalProfile profile_;
  ConcurrencyPolicy reactive_;
  int floor_ = 0;
};

}  // namespace zs::platform
