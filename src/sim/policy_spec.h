#pragma once
// Which autoscaling policies a simulation compares, and with what overrides. A spec is
//   [label=]policy[:key=value,...]     keys: keep_alive (duration), sleep_after (duration or
//                                            never), target_concurrency, min_instances,
//                                            max_instances
// e.g. "concurrency", "keep-alive-10m=concurrency:keep_alive=10m", "always-on".
// "always-on" is the simulator's own baseline, not a platform policy: every deployment runs
// its peak need (sim/baseline.h: its most requests in flight at once over its slots) from the first second,
// already warm — the cost of provisioning for the peak.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "platform/autoscale/scaling_policy.h"

namespace zs::sim {

inline constexpr const char* kAlwaysOn = "always-on";

struct PolicySpec {
  std::string label;   // column name in reports
  std::string policy;  // a make_scaling_policy name, or kAlwaysOn
  std::optional<double> keep_alive_s;
  std::optional<double> sleep_after_s;  // < 0: instances never sleep
  std::optional<double> target_concurrency;
  std::optional<int> min_instances;
  std::optional<int> max_instances;

  bool always_on() const { return policy == kAlwaysOn; }
};

// Parses a spec and checks that the platform knows the policy (the error lists what it knows).
core::Result<PolicySpec> parse_policy_spec(const std::string& text);

// always-on, keep-alive-10m (fixed with a 10-minute keep_alive), the default policy (hybrid), concurrency, then rules, histogram and predictive where the
// platform has them; `unavailable` receives the names it does not.
std::vector<PolicySpec> default_policy_specs(std::vector<std::string>* unavailable);

// The baseline: `instances` always, never scaling in.
class AlwaysOnPolicy final : public platform::ScalingPolicy {
 public:
  explicit AlwaysOnPolicy(int instances) : instances_(instances) {}
  std::string_view name() const override { return kAlwaysOn; }
  platform::ScalingDecision decide(const platform::DeploymentObservation&) override {
    platform::ScalingDecision d;
    d.desired = instances_;
    return d;
  }

 private:
  int instances_;
};

}  // namespace zs::sim
