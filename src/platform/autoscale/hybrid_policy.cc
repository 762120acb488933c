#include "platform/autoscale/hybrid_policy.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace zs::platform {
namespace {

std::string minutes(double s) { return short_number(s / 60) + " min"; }

}  // namespace

HybridPolicy::HybridPolicy(const PolicyOptions& options)
    : options_(options), histogram_(options.histogram_bin_s, options.hybrid_range_s) {}

core::Status HybridPolicy::restore_state(const std::string& state) {
  if (state.empty()) return core::Status::ok();
  windows_total_ = ~0ull;
  return histogram_.parse(state).with_context("restoring the hybrid policy");
}

double HybridPolicy::start_lead_s() const { return starts_.lead_s(options_.prewarm_lead_s); }

const HybridPolicy::Windows& HybridPolicy::windows() {
  // The windows move little with one more idle time once there are many: recompute when the
  // histogram has grown by a sixteenth (every time while it is small), or the start lead changed.
  const uint64_t n = histogram_.total();
  if (windows_total_ == ~0ull || n < windows_total_ || n - windows_total_ >= std::max<uint64_t>(1, windows_total_ / 16) ||
      windows_lead_s_ != start_lead_s() || windows_share_ != sleep_cost_share_) {
    windows_ = compute_windows();
    windows_total_ = n;
    windows_lead_s_ = start_lead_s();
    windows_share_ = sleep_cost_share_;
  }
  return windows_;
}

HybridPolicy::Windows HybridPolicy::compute_windows() const {
  Windows w;
  const auto& h = histogram_;
  const uint64_t n = h.total();
  if (n < options_.histogram_min_samples) {
    w.why = std::to_string(n) + " idle times < " + short_number(options_.histogram_min_samples);
    return w;
  }
  const double oob_share = static_cast<double>(h.out_of_bounds()) / n;
  if (oob_share > options_.histogram_max_oob_fraction) {
    w.why = short_number(oob_share * 100) + "% of idle times beyond " + minutes(options_.hybrid_range_s);
    return w;
  }
  w.learned = true;
  const double bin = h.bin_s(), lead = start_lead_s();
  // Kept time is paid at the sleep price when instances sleep through it, so a cold start
  // avoided is worth that much more kept time.
  const double cold_cost = options_.hybrid_cold_start_cost_s / std::max(sleep_cost_share_, 1e-3);
  size_t used = 0;  // bins up to the last non-empty one
  for (size_t i = 0; i < h.bins(); ++i)
    if (h.count(i) > 0) used = i + 1;
  // Prefix sums: idle times in bins [0, i) and their total length (at bin centres).
  std::vector<double> count(used + 1, 0), length(used + 1, 0);
  for (size_t i = 0; i < used; ++i) {
    count[i + 1] = count[i] + h.count(i);
    length[i + 1] = length[i] + h.count(i) * (i + 0.5) * bin;
  }
  const double in_range = count[used], beyond = static_cast<double>(h.out_of_bounds());
  double best = std::numeric_limits<double>::infinity();
  for (double p : {0.0, 1.0, options_.histogram_head_percentile, 10.0, 25.0}) {
    // Ready at `head` after the last request: started `lead` earlier, or kept from the end when
    // stopping would save less than a start.
    const double head = p > 0 && in_range > 0 ? h.percentile_lower_edge_s(p) : 0;
    double start = head - lead;
    if (start <= lead) start = 0;
    // Idle times shorter than the head find nothing running.
    const size_t first = start > 0 ? std::min(used, static_cast<size_t>(head / bin)) : 0;
    for (size_t last = first; last <= used; ++last) {
      const double until = last * bin;  // covers the bins below `last`
      if (start > 0 && until <= start) continue;
      const double later = in_range - count[last] + beyond;  // idle times past the window: cold
      const double warm = (length[last] - length[first]) - start * (count[last] - count[first]) +
                          std::max(0.0, until - start) * later;
      const double cost = warm + cold_cost * (count[first] + later);
      if (cost < best) {
        best = cost;
        w.prewarm_at_s = start;
        w.keep_until_s = until;
        w.why = "p" + short_number(p) + " idle " + minutes(head) + ", window to " + minutes(until) + ": " +
                short_number(warm / n) + " s warm and " + short_number(100 * (count[first] + later) / n) +
                "% cold per idle period";
      }
    }
  }
  return w;
}

ScalingDecision HybridPolicy::decide(const DeploymentObservation& o) {
  sleep_cost_share_ = o.sleep_after_s >= 0 ? std::clamp(o.sleep_cost_share, 0.0, 1.0) : 1.0;
  const double ended = idle_.observe(o);
  if (ended >= 0) histogram_.add(ended);
  const int demand = demand_of(o);
  const int need = instances_for(demand, per_instance_target(options_, o));
  const int live = live_count(o);
  ScalingDecision d;
  if (o.keep_alive_s < 0) {  // never scale in
    settle_count(d, bounded(need, o), o, name());
    starts_.observe(o, d);
    return d;
  }
  // The last instance, after the last request of a busy period.
  int keep = 0;
  bool warm = false, unloaded = false;
  if (idle_.idle()) {
    const Windows& w = windows();
    const double idle_for = o.now_s - idle_.since_s();
    if (!w.learned) {
      keep = idle_for < o.keep_alive_s ? 1 : 0;
      if (keep) d.revisit_at_s = idle_.since_s() + o.keep_alive_s;
      if (keep && !last_warm_) d.reason = "hybrid: fixed keep_alive " + short_number(o.keep_alive_s) + " s (" + w.why + ")";
      warm = keep;
    } else if (idle_for < w.prewarm_at_s) {
      unloaded = true;
      d.revisit_at_s = idle_.since_s() + w.prewarm_at_s;
      if (!last_unloaded_) d.reason = "hybrid: unload; pre-warm at " + minutes(w.prewarm_at_s) + " idle (" + w.why + ")";
    } else if (idle_for < w.keep_until_s) {
      keep = 1;
      warm = true;
      d.revisit_at_s = idle_.since_s() + w.keep_until_s;
      d.sleep_after_s = 0;  // the window waits for an arrival at an unknown time: asleep, where it can
      if (!last_warm_)
        d.reason = std::string("hybrid: ") + (w.prewarm_at_s > 0 ? "pre-warm" : "keep") + " until " +
                   minutes(w.keep_until_s) + " idle (" + w.why + ")";
    }
  }
  const int desired = bounded(std::max(need, keep), o);
  // Waiting work keeps every instance (an idle one is about to take it). Instances above one
  // leave after the scale-in delay; the last one when its window says so.
  if (o.queued == 0) d.stop = surplus_idle(o, desired, desired == 0 ? 0 : options_.hybrid_scale_in_delay_s);
  d.desired = bounded(std::max(desired, live - static_cast<int>(d.stop.size())), o);
  if (d.reason.empty() && !d.stop.empty())
    d.reason = desired == 0 ? "hybrid: stop the last instance (idle window over)"
                            : "hybrid: stop " + std::to_string(d.stop.size()) + " idle for " +
                                  short_number(options_.hybrid_scale_in_delay_s) + " s above demand";
  last_warm_ = warm;
  last_unloaded_ = unloaded;
  starts_.observe(o, d);
  return d;
}

}  // namespace zs::platform
