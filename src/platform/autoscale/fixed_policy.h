#pragma once
// "fixed": the fixed keep-alive policy of AWS Lambda and Azure Functions. Scales out at once
// to ceil(demand / target per instance), no windows; an instance idle for keep_alive_s is
// stopped (longest idle first), never below what the demand needs or min_instances. The
// histogram policy falls back to it when its histogram says nothing useful.
#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/scaling_policy.h"

namespace zs::platform {

class FixedPolicy final : public ScalingPolicy {
 public:
  explicit FixedPolicy(const PolicyOptions& options) : options_(options) {}
  std::string_view name() const override { return "fixed"; }
  ScalingDecision decide(const DeploymentObservation& o) override;

 private:
  PolicyOptions options_;
  int last_desired_ = -1;
};

}  // namespace zs::platform
