#pragma once
// A tiny fleet for policy tests: it applies decisions the way platform/fleet does (starts
// desired - live, drains the idle instances named in `stop`), lets instances become ready after
// a start time, and spreads a given demand over the ready ones. Time is whatever the test says.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "platform/autoscale/scaling_policy.h"

namespace zs::platform::testing {

class FakeFleet {
 public:
  FakeFleet(std::unique_ptr<ScalingPolicy> policy, DeploymentObservation shape, double start_s = 5)
      : policy_(std::move(policy)), shape_(std::move(shape)), start_s_(start_s) {}

  // One observation at `now_s`: `demand` requests want service (running or waiting),
  // `arrivals` of them arrived since the previous step.
  ScalingDecision step(double now_s, int demand, int arrivals = 0, double ttft_p95_s = 0) {
    for (auto& i : instances_)
      if (!i.ready && now_s - i.started_s >= start_s_) {
        i.ready = true;
        i.idle_since_s = now_s;
      }
    const int ready = ready_count();
    const int in_flight = std::min(demand, ready * shape_.slots);
    if (arrivals > 0 && ready == 0) cold_arrivals += arrivals;
    // Least loaded first, in a stable order: the first instances take the work.
    int left = in_flight;
    const int per = ready > 0 ? in_flight / ready : 0;
    int extra = ready > 0 ? in_flight % ready : 0;
    for (auto& i : instances_) {
      if (!i.ready) continue;
      int n = std::min(left, per + (extra > 0 ? 1 : 0));
      if (extra > 0) --extra;
      left -= n;
      if (n == 0 && i.in_flight > 0) i.idle_since_s = now_s;
      i.in_flight = n;
    }
    DeploymentObservation o = shape_;
    o.now_s = now_s;
    o.in_flight = in_flight;
    o.queued = demand - in_flight;
    o.arrivals = arrivals;
    o.ttft_p95_s = ttft_p95_s;
    o.instances.clear();
    for (const auto& i : instances_)
      o.instances.push_back({i.id, i.ready, i.in_flight, i.ready && i.in_flight == 0 ? now_s - i.idle_since_s : 0.0});
    ScalingDecision d = policy_->decide(o);
    last = d;
    if (!d.reason.empty()) reasons.push_back(std::to_string(now_s) + " " + d.reason);
    for (const auto& id : d.stop) {
      auto it = std::find_if(instances_.begin(), instances_.end(), [&](const auto& i) { return i.id == id; });
      if (it != instances_.end() && it->ready && it->in_flight == 0) {
        instances_.erase(it);
        ++stops;
      }
    }
    const int limit = std::max(shape_.min_instances, shape_.max_instances);
    while (live() < std::min(d.desired, limit)) {
      instances_.push_back({"i" + std::to_string(next_id_++), now_s, false, 0, now_s});
      ++starts;
    }
    if (first_) last_now_s_ = now_s;
    first_ = false;
    instance_seconds += live() * std::max(0.0, now_s - last_now_s_);
    last_now_s_ = now_s;
    return d;
  }

  // Steps from `from_s` (inclusive) to `to_s` (exclusive) every `dt_s` with demand(t) and arrivals(t).
  void run(double from_s, double to_s, double dt_s, const std::function<int(double)>& demand,
           const std::function<int(double)>& arrivals = nullptr) {
    for (double t = from_s; t < to_s - 1e-9; t += dt_s) step(t, demand(t), arrivals ? arrivals(t) : 0);
  }

  int live() const { return static_cast<int>(instances_.size()); }
  int ready_count() const {
    return static_cast<int>(std::count_if(instances_.begin(), instances_.end(), [](const auto& i) { return i.ready; }));
  }
  ScalingPolicy& policy() { return *policy_; }
  DeploymentObservation& shape() { return shape_; }
  bool saw_reason(const std::string& part) const {
    return std::any_of(reasons.begin(), reasons.end(), [&](const auto& r) { return r.find(part) != std::string::npos; });
  }
  std::string all_reasons() const {
    std::string s;
    for (const auto& r : reasons) s += r + "\n";
    return s;
  }

  int starts = 0;
  int stops = 0;
  int cold_arrivals = 0;  // requests that arrived while no instance was ready
  double instance_seconds = 0;
  ScalingDecision last;
  std::vector<std::string> reasons;

 private:
  struct Instance {
    std::string id;
    double started_s;
    bool ready;
    int in_flight;
    double idle_since_s;
  };
  std::unique_ptr<ScalingPolicy> policy_;
  DeploymentObservation shape_;
  double start_s_;
  std::vector<Instance> instances_;
  int next_id_ = 0;
  double last_now_s_ = 0;
  bool first_ = true;
};

inline DeploymentObservation shape(int max_instances, int slots, double keep_alive_s, int min_instances = 0) {
  DeploymentObservation o;
  o.min_instances = min_instances;
  o.max_instances = max_instances;
  o.slots = slots;
  o.keep_alive_s = keep_alive_s;
  return o;
}

inline std::unique_ptr<ScalingPolicy> policy(const std::string& name, const PolicyOptions& options = {}) {
  auto p = make_scaling_policy(name, options);
  if (!p.is_ok()) return nullptr;
  return std::move(p.value());
}

}  // namespace zs::platform::testing
