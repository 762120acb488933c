#include "platform/autoscale/fixed_policy.h"

#include <algorithm>

namespace zs::platform {

ScalingDecision FixedPolicy::decide(const DeploymentObservation& o) {
  const double target = per_instance_target(options_, o);
  const int demand = demand_of(o);
  const int need = bounded(instances_for(demand, target), o);
  const int live = live_count(o);
  ScalingDecision d;
  // Waiting work keeps every instance: an idle one is about to take it.
  if (o.keep_alive_s >= 0 && o.queued == 0) d.stop = surplus_idle(o, need, o.keep_alive_s);
  d.desired = bounded(std::max(need, live - static_cast<int>(d.stop.size())), o);
  if (!d.stop.empty()) {
    d.reason = "fixed: idle past keep_alive " + short_number(o.keep_alive_s) + " s: stop " +
               std::to_string(d.stop.size());
  } else if (d.desired != last_desired_ && d.desired > live) {
    d.reason = "fixed: demand " + std::to_string(demand) + " at target " + short_number(target) + " -> " +
               std::to_string(d.desired);
  }
  last_desired_ = d.desired;
  return d;
}

}  // namespace zs::platform
