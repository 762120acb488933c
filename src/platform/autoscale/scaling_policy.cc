#include "platform/autoscale/scaling_policy.h"

#include <algorithm>
#include <cmath>

namespace zs::platform {
namespace {

// Idle instances past their keep-alive, longest idle first, without going under `floor`.
std::vector<std::string> expired_idle(const DeploymentObservation& o, int floor) {
  std::vector<const InstanceObservation*> idle;
  for (const auto& i : o.instances)
    if (i.ready && i.in_flight == 0 && i.idle_for_s >= o.keep_alive_s) idle.push_back(&i);
  std::sort(idle.begin(), idle.end(), [](auto a, auto b) { return a->idle_for_s > b->idle_for_s; });
  std::vector<std::string> stop;
  int live = static_cast<int>(o.instances.size());
  for (const auto* i : idle) {
    if (live <= floor) break;
    stop.push_back(i->id);
    --live;
  }
  return stop;
}

class ConcurrencyPolicy final : public ScalingPolicy {
 public:
  explicit ConcurrencyPolicy(PolicyOptions options) : options_(options) {}
  std::string_view name() const override { return "concurrency"; }

  ScalingDecision decide(const DeploymentObservation& o) override {
    const double target = options_.target_concurrency > 0 ? options_.target_concurrency : std::max(1, o.slots);
    const int demand = o.in_flight + o.queued;
    ScalingDecision d;
    d.desired = std::clamp(static_cast<int>(std::ceil(demand / target)), o.min_instances, std::max(o.min_instances, o.max_instances));
    // Never drop below what the demand needs: scale in only instances that are surplus.
    if (o.keep_alive_s >= 0 && o.queued == 0) d.stop = expired_idle(o, std::max(d.desired, o.min_instances));
    return d;
  }

 private:
  PolicyOptions options_;
};

class FixedPolicy final : public ScalingPolicy {
 public:
  std::string_view name() const override { return "fixed"; }
  ScalingDecision decide(const DeploymentObservation& o) override {
    ScalingDecision d;
    d.desired = o.min_instances;
    return d;
  }
};

}  // namespace

core::Result<std::unique_ptr<ScalingPolicy>> make_scaling_policy(const std::string& name, const PolicyOptions& options) {
  if (name == "concurrency" || name.empty()) return std::unique_ptr<ScalingPolicy>(new ConcurrencyPolicy(options));
  if (name == "fixed") return std::unique_ptr<ScalingPolicy>(new FixedPolicy());
  return core::Status::error("unknown autoscale policy '" + name + "' (known: concurrency, fixed)");
}

}  // namespace zs::platform
