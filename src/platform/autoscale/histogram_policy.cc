#include "platform/autoscale/histogram_policy.h"

#include <algorithm>

namespace zs::platform {
namespace {

std::string minutes(double s) { return short_number(s / 60) + " min"; }

}  // namespace

HistogramPolicy::HistogramPolicy(const PolicyOptions& options)
    : options_(options), histogram_(options.histogram_bin_s, options.histogram_range_s), fallback_(options) {}

core::Status HistogramPolicy::restore_state(const std::string& state) {
  if (state.empty()) return core::Status::ok();
  cached_total_ = ~0ull;
  return histogram_.parse(state).with_context("restoring the histogram policy");
}

const HistogramPolicy::Windows& HistogramPolicy::windows() const {
  // Recomputed only when the histogram or the start lead changed: decisions come far more
  // often than idle times end.
  const double lead = starts_.lead_s(options_.prewarm_lead_s);
  if (cached_total_ != histogram_.total() || cached_lead_s_ != lead) {
    cached_ = compute_windows(lead);
    cached_total_ = histogram_.total();
    cached_lead_s_ = lead;
  }
  return cached_;
}

HistogramPolicy::Windows HistogramPolicy::compute_windows(double lead_s) const {
  Windows w;
  const auto& h = histogram_;
  if (h.total() < options_.histogram_min_samples) {
    w.why = std::to_string(h.total()) + " idle times < " + short_number(options_.histogram_min_samples);
    return w;
  }
  const double oob = static_cast<double>(h.out_of_bounds()) / h.total();
  if (oob > options_.histogram_max_oob_fraction) {
    w.why = short_number(oob * 100) + "% of idle times beyond " + minutes(options_.histogram_range_s);
    return w;
  }
  const double cv = h.coefficient_of_variation();
  if (cv <= options_.histogram_cv_threshold) {
    w.why = "cv " + short_number(cv) + " <= " + short_number(options_.histogram_cv_threshold);
    return w;
  }
  w.representative = true;
  const double head = h.percentile_lower_edge_s(options_.histogram_head_percentile);
  const double tail = h.percentile_upper_edge_s(options_.histogram_tail_percentile);
  const double prewarm = head * (1 - options_.histogram_margin);
  w.keep_until_s = tail * (1 + options_.histogram_margin);
  // Stopping pays only when the instance would be gone for longer than it takes to start again.
  const double start_at = prewarm - lead_s;
  w.prewarm_at_s = start_at > lead_s ? start_at : 0;
  w.why = "p" + short_number(options_.histogram_head_percentile) + " idle " + minutes(head) + ", p" +
          short_number(options_.histogram_tail_percentile) + " idle " + minutes(tail);
  return w;
}

ScalingDecision HistogramPolicy::decide(const DeploymentObservation& o) {
  ScalingDecision d = decide_now(o);
  starts_.observe(o, d);
  return d;
}

ScalingDecision HistogramPolicy::decide_now(const DeploymentObservation& o) {
  const double now = o.now_s;
  const double ended = idle_.observe(o);
  if (ended >= 0) histogram_.add(ended);

  ScalingDecision fixed = fallback_.decide(o);
  if (!idle_.idle()) {
    phase_ = Phase::kBusy;
    return fixed;
  }
  const Windows& w = windows();
  const Phase before = phase_;
  if (!w.representative) {
    phase_ = Phase::kFallback;
    if (before != Phase::kFallback && fixed.reason.empty())
      fixed.reason = "histogram: not representative (" + w.why + "): fixed keep-alive " +
                     short_number(o.keep_alive_s) + " s";
    return fixed;
  }

  const double idle_for = now - idle_.since_s();
  ScalingDecision d;
  if (idle_for < w.prewarm_at_s) {
    phase_ = Phase::kUnloaded;
    d.revisit_at_s = idle_.since_s() + w.prewarm_at_s;
  } else if (idle_for < w.keep_until_s) {
    phase_ = Phase::kWarm;
    d.revisit_at_s = idle_.since_s() + w.keep_until_s;
    d.sleep_after_s = 0;  // waiting for an arrival at an unknown time: asleep, where it can
  } else {
    phase_ = Phase::kExpired;
  }
  const int live = live_count(o);
  if (phase_ == Phase::kWarm || o.keep_alive_s < 0) {
    d.desired = bounded(std::max(1, o.keep_alive_s < 0 ? live : 1), o);
    // Extra instances from the last burst follow the fixed keep-alive; one stays for the window.
    if (o.keep_alive_s >= 0) d.stop = surplus_idle(o, d.desired, o.keep_alive_s);
    d.desired = std::max(d.desired, live - static_cast<int>(d.stop.size()));
  } else {
    d.desired = bounded(0, o);
    d.stop = surplus_idle(o, d.desired);
  }
  if (phase_ != before) {
    switch (phase_) {
      case Phase::kUnloaded:
        d.reason = "histogram: unload after the last request; pre-warm at " + minutes(w.prewarm_at_s) + " (" +
                   w.why + ")";
        break;
      case Phase::kWarm:
        d.reason = w.prewarm_at_s > 0 ? "histogram: pre-warm at " + minutes(idle_for) + " idle, keep until " +
                                            minutes(w.keep_until_s) + " (" + w.why + ")"
                                      : "histogram: keep warm until " + minutes(w.keep_until_s) + " idle (" +
                                            w.why + ")";
        break;
      case Phase::kExpired:
        d.reason = "histogram: keep-alive window over at " + minutes(w.keep_until_s) + " idle (" + w.why + ")";
        break;
      default:
        break;
    }
  }
  explain_stops(d, name());
  return d;
}

}  // namespace zs::platform
