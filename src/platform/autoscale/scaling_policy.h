#pragma once
// Autoscaling policies: plain classes fed with observations of one deployment (which carry
// the time, so a virtual clock drives them in tests and in the simulator) that return how many
// instances the deployment should have and which idle instances to stop. No I/O inside: the
// fleet (and later the simulator) apply the decisions.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::platform {

struct InstanceObservation {
  std::string id;
  bool ready = false;     // false: still starting
  int in_flight = 0;
  double idle_for_s = 0;  // ready with nothing in flight for this long (0 when busy)
};

struct DeploymentObservation {
  double now_s = 0;
  int min_instances = 0;
  int max_instances = 1;
  int slots = 1;
  double keep_alive_s = 300;  // < 0: never scale in
  int queued = 0;
  int in_flight = 0;
  int arrivals = 0;             // requests that arrived since the previous observation
  double ttft_p95_s = 0;        // recent time-to-first-token, 0 when unknown
  double ttft_objective_s = 0;  // the deployment's objective, 0 when none
  std::vector<InstanceObservation> instances;  // live ones (starting or ready; not draining)
};

struct ScalingDecision {
  int desired = 0;                  // instances wanted (the fleet starts the difference)
  std::vector<std::string> stop;    // idle instances to drain now
  std::string reason;               // why, for the decision log (empty: nothing changed)
};

class ScalingPolicy {
 public:
  virtual ~ScalingPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual ScalingDecision decide(const DeploymentObservation& o) = 0;
  // Learned state that should survive a restart (e.g. an idle-time histogram); "" if none.
  virtual std::string save_state() const { return ""; }
  virtual core::Status restore_state(const std::string& state) { return core::Status::ok(); }
};

struct PolicyOptions {
  double target_concurrency = 0;  // requests per instance; 0 = the deployment's slots
};

// "concurrency": enough instances for what runs and waits at `target_concurrency` each,
// scaled in one idle instance at a time once it has been idle for keep_alive.
// "fixed": always min_instances (never more, never fewer).
core::Result<std::unique_ptr<ScalingPolicy>> make_scaling_policy(const std::string& name, const PolicyOptions& options);

}  // namespace zs::platform
