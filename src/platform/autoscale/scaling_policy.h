#pragma once
// Autoscaling policies: plain classes fed with observations of one deployment (which carry
// the time, so a virtual clock drives them in tests and in the simulator) that return how many
// instances the deployment should have and which idle instances to stop. No I/O inside: the
// fleet (and the simulator) apply the decisions.
//
// Observations may come at any interval (every ~20 ms from the fleet, at event times from the
// simulator); each policy keeps its own evaluation cadence from `now_s`.
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
  bool asleep = false;    // sleeping: its cache and threads released, woken by the next request
};

struct DeploymentObservation {
  double now_s = 0;  // seconds; `predictive` reads it as Unix time (hour of day, day of week in UTC)
  int min_instances = 0;
  int max_instances = 1;
  int slots = 1;
  double keep_alive_s = 300;  // < 0: never scale in
  double sleep_after_s = -1;  // the deployment's sleep_after; < 0: its instances never sleep
  // What a sleeping instance costs per second as a share of a running one (its device's sleep
  // price / price); 1 when the deployment's instances never sleep.
  double sleep_cost_share = 1;
  int queued = 0;
  int in_flight = 0;
  int arrivals = 0;             // requests that arrived since the previous observation
  double ttft_p95_s = 0;        // recent time-to-first-token, 0 when unknown
  double ttft_objective_s = 0;  // the deployment's objective, 0 when none
  std::vector<InstanceObservation> instances;  // live ones (starting or ready; not draining)
};

struct ScalingDecision {
  int desired = 0;                  // instances wanted (the fleet starts the difference)
  std::vector<std::string> stop;    // idle ready instances to drain now; at most live - desired
  std::string reason;               // why, for the decision log (empty: nothing changed)
  // When the policy next wants to look even if nothing changes (a pre-warm or the end of a
  // keep-alive window), on the observation's clock; 0: no such time. The fleet looks every
  // 20 ms anyway; the simulator, which looks at event times, schedules a look then.
  double revisit_at_s = 0;
  // Idle instances go to sleep once idle this long (0: at once); < 0: after the deployment's
  // sleep_after. Ignored when the deployment's instances cannot sleep.
  double sleep_after_s = -1;
};

class ScalingPolicy {
 public:
  virtual ~ScalingPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual ScalingDecision decide(const DeploymentObservation& o) = 0;
  // Learned state that should survive a restart (e.g. an idle-time histogram); "" if none.
  // Plain text; restore_state("") is always accepted and keeps the fresh state.
  virtual std::string save_state() const { return ""; }
  virtual core::Status restore_state(const std::string& state) { return core::Status::ok(); }
};

// Knobs of every policy, plain numbers so that the config layer maps YAML onto them one to one.
// Defaults follow Knative's KPA (concurrency), "Serverless in the Wild" (histogram) and common
// rule-based autoscalers; docs/autoscaling.md explains each. Keep `target_concurrency` first:
// callers build options as `{target}`.
struct PolicyOptions {
  double target_concurrency = 0;  // requests per instance; 0 = the deployment's slots

  // Shared by the demand-driven policies.
  double evaluation_interval_s = 2;  // decisions are re-evaluated this often; in between the last one holds
  double prewarm_lead_s = 30;        // typical instance start time: pre-warming starts this much early

  // concurrency (Knative KPA).
  double stable_window_s = 60;       // demand averaged over this window decides the count
  double panic_window_s = 6;         // ... and over this one decides whether to panic
  double panic_threshold = 2;        // panic when panic-window demand >= this x ready capacity
  double scale_down_delay_s = 0;     // the highest count of this trailing window holds
  double max_scale_up_rate = 1000;   // at most this x ready instances per evaluation
  double max_scale_down_rate = 2;    // at least ready / this instances per evaluation

  // rules.
  double rules_queue_threshold = 50;       // scale out when the queue averaged over the window exceeds it
  double rules_queue_window_s = 5;
  double rules_high_utilization = 0.85;    // scale out when utilisation stays above it ...
  double rules_high_for_s = 120;           // ... for this long
  double rules_ttft_factor = 1.2;          // scale out when ttft p95 > objective x this (objective set)
  double rules_scale_out_fraction = 0.5;   // add this fraction of the current count (at least 1)
  double rules_scale_out_cooldown_s = 30;  // between scale-outs (and never while one still starts)
  double rules_low_utilization = 0.5;      // scale in when utilisation stays below it ...
  double rules_scale_in_fraction = 0.25;   // ... by this fraction of the current count (at least 1) ...
  double rules_scale_in_interval_s = 300;  // ... once per this interval
  double rules_warm_fraction = 0.1;        // idle spare kept on scale-in, as a fraction of the current count

  // histogram (hybrid histogram keep-alive, Shahrad et al., ATC'20).
  double histogram_bin_s = 60;              // idle-time bin width
  double histogram_range_s = 3600;          // idle times beyond this are out of bounds
  double histogram_head_percentile = 5;     // pre-warm after this percentile of idle time
  double histogram_tail_percentile = 99;    // keep alive until this percentile
  double histogram_margin = 0;              // head shortened and tail lengthened by this fraction
  double histogram_cv_threshold = 2;        // representative when the bin counts' CV exceeds it
  double histogram_min_samples = 10;        // ... and it holds at least this many idle times
  double histogram_max_oob_fraction = 0.25; // more out-of-bounds idle times than this: fixed keep-alive

  // hybrid (the default: demand-driven count, cost-aware histogram windows for the last instance).
  double hybrid_cold_start_cost_s = 1080;  // instance-seconds one avoided cold start is worth
  double hybrid_scale_in_delay_s = 60;     // instances above the demand leave once idle this long
  double hybrid_range_s = 4 * 3600;        // its idle-time histogram's range (bins of histogram_bin_s)

  // predictive (hour-of-day / day-of-week arrival profile, then concurrency).
  double predictive_threshold = 10;        // expected arrivals in the coming hour that warrant pre-warming
  double predictive_history_weight = 0.7;  // weight of the old estimate each time an hour comes round
  double predictive_min_weeks = 2;         // day-of-week buckets count once seen this many weeks; else hour of day
};

// The policy a deployment gets when its configuration names none.
inline constexpr const char* kDefaultScalingPolicy = "hybrid";

// The names make_scaling_policy knows, in the order docs/autoscaling.md presents them.
const std::vector<std::string>& scaling_policy_names();

// Checks the options' ranges; the message names the field and the accepted range.
core::Status validate_policy_options(const PolicyOptions& options);

// "concurrency": Knative-style stable/panic windows on in-flight + queued requests.
// "rules": queue / utilisation / TTFT thresholds, step-wise scale-in.
// "fixed": demand-driven scale-out, scale-in after keep_alive idle.
// "histogram": per-deployment idle-time histogram decides keep-alive and pre-warming.
// "predictive": daily/weekly arrival profile pre-warms ahead of recurring peaks.
// "hybrid" (the default, also ""): demand-driven count; the last instance kept and pre-warmed in
// the cheapest windows its idle-time histogram allows.
core::Result<std::unique_ptr<ScalingPolicy>> make_scaling_policy(const std::string& name, const PolicyOptions& options);

}  // namespace zs::platform
