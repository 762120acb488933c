#include "sim/baseline.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <queue>

namespace zs::sim {

double service_time_at_batch(const SimRequest& request, const ServiceProfile& profile, int batch) {
  double s = profile.prefill_tokens_per_s > 0 ? request.prompt_tokens / profile.prefill_tokens_per_s : 0;
  batch = std::max(1, batch);
  const double decode = profile.decode_rate(batch) / batch;
  if (request.output_tokens > 1 && decode > 0) s += (request.output_tokens - 1) / decode;
  return s;
}

std::vector<int> always_on_instances(const Workload& w) {
  // Requests come sorted by arrival: per deployment, the end times of the requests still in
  // flight (a min-heap); its largest size is the most requests in flight at once, in
  // whichever minute that happens. A request done at t frees its slot for one arriving at t.
  std::vector<std::priority_queue<double, std::vector<double>, std::greater<>>> in_flight(w.deployments.size());
  std::vector<size_t> peak(w.deployments.size(), 0);
  for (const SimRequest& q : w.requests) {
    if (q.deployment >= w.deployments.size()) continue;
    auto& h = in_flight[q.deployment];
    while (!h.empty() && h.top() <= q.arrival_s) h.pop();
    const auto& dep = w.deployments[q.deployment];
    h.push(q.arrival_s + service_time_at_batch(q, dep.profile, dep.config.slots));
    peak[q.deployment] = std::max(peak[q.deployment], h.size());
  }
  std::vector<int> out(w.deployments.size(), 0);
  std::vector<int> floor(w.deployments.size(), 0);
  for (size_t k = 0; k < w.deployments.size(); ++k) {
    const auto& c = w.deployments[k].config;
    const size_t slots = static_cast<size_t>(std::max(1, c.slots));
    const int need = static_cast<int>(std::min<size_t>((peak[k] + slots - 1) / slots, 1u << 30));
    floor[k] = std::max(0, c.min_instances);
    out[k] = std::clamp(need, floor[k], std::max(floor[k], c.max_instances));
  }
  // Peaks that do not fit their device together: the platform cannot run more than its
  // devices hold, and the instances left out would belong to whichever deployments start
  // last, which would then serve nothing. Trim the largest to a common cap (never below one
  // instance, nor below min_instances) until the device holds them all.
  std::vector<std::vector<size_t>> on_device(w.devices.size());
  for (size_t k = 0; k < w.deployments.size(); ++k)
    if (w.deployments[k].device < w.devices.size()) on_device[w.deployments[k].device].push_back(k);
  for (size_t dev = 0; dev < w.devices.size(); ++dev) {
    const uint64_t capacity = w.devices[dev].memory_bytes;
    auto bytes_at = [&](int cap) {
      uint64_t sum = 0;
      for (size_t k : on_device[dev])
        sum += static_cast<uint64_t>(std::max(floor[k], std::min(out[k], cap))) * w.deployments[k].memory_bytes;
      return sum;
    };
    if (capacity == 0 || bytes_at(std::numeric_limits<int>::max()) <= capacity) continue;
    int cap = 0;
    for (size_t k : on_device[dev]) cap = std::max(cap, out[k]);
    while (cap > 1 && bytes_at(cap) > capacity) --cap;
    for (size_t k : on_device[dev]) out[k] = std::max(floor[k], std::min(out[k], cap));
  }
  return out;
}

}  // namespace zs::sim
