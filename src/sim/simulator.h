#pragma once
// The discrete-event simulator: replays a Workload through one autoscaling policy with a
// virtual clock. Every fleet decision (queues, dispatch, instance lifecycle, scaling policy,
// placement and eviction) is made by the daemon's own FleetCore (platform/fleet/fleet_core.h);
// the simulator is only its runtime: instances that become ready after the calibration's cold
// start and exit at once when stopped, and the service model below.
//
// Inside an instance, a request's prompt joins the prefill queue once its overhead (the
// profile's request_overhead_s, paid side by side) has passed; prompts are processed one at a
// time in that order at the profile's prefill rate (the first token comes out when a prompt is
// done); decoding sequences share the profile's aggregate decode rate for the current batch
// size. Prefill and decode are assumed not to slow each other down. Cold starts and overheads
// that vary are drawn per start and per request (sim/calibration.h, Spread).
//
// Policies are asked at every change that could need a decision (a request that finds no
// instance at once, as it wakes the Fleet's tick), when an idle instance reaches its keep-alive,
// and on a tick that starts at 2 s of simulated time and backs off (x4) to 60 s while nothing
// changes (RunOptions::idle_tick_s for a deployment at zero). Instance time is counted over
// [0, duration]; requests still running at the end are finished (their latencies count)
// without further cost.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/policy_spec.h"
#include "sim/workload.h"

namespace zs::sim {

struct Quantiles {
  double p50 = 0, p95 = 0, p99 = 0, mean = 0, max = 0;
};

struct RunResult {
  std::string label;
  std::string policy;
  uint64_t requests = 0;
  uint64_t served = 0;
  uint64_t refused_queue_full = 0;  // 429: the deployment's max_queue was full
  uint64_t refused_timeout = 0;     // waited longer than request_timeout
  uint64_t refused_no_memory = 0;   // the model cannot fit its device
  uint64_t cold_requests = 0;       // served requests that arrived with no instance ready
  uint64_t cold_starts = 0;         // instances started while requests waited
  uint64_t wake_requests = 0;       // served requests that woke a sleeping instance
  uint64_t instance_starts = 0;
  double instance_seconds = 0;
  double busy_seconds = 0;   // instance time with at least one request in flight
  double sleep_seconds = 0;  // instance time asleep (part of instance_seconds)
  // instance_seconds x the device's price_per_second, sleeping seconds at its sleep price
  double cost = 0;
  int peak_instances = 0;   // across all deployments at once
  double mean_instances = 0;
  double memory_utilisation = 0;  // reserved memory / capacity, time-averaged over devices
  Quantiles ttft_s;
  Quantiles queue_s;
  std::vector<float> ttft_cdf;          // 100 quantiles (1%..100%) of TTFT, for plots
  std::vector<float> instances_series;  // mean live instances per bucket
  double bucket_s = 0;
  std::vector<int> peak_per_deployment;
  uint64_t decisions = 0;
  uint64_t events = 0;
  double wall_s = 0;
  double duration_s = 0;

  double cold_fraction() const { return served ? static_cast<double>(cold_requests) / served : 0; }
  double wake_fraction() const { return served ? static_cast<double>(wake_requests) / served : 0; }
  uint64_t refused() const { return refused_queue_full + refused_timeout + refused_no_memory; }
};

struct RunOptions {
  PolicySpec spec;
  // For always-on: the instances each deployment keeps (started warm at time 0); see sim/baseline.h.
  std::vector<int> always_on_instances;
  int series_buckets = 480;
  // How often a deployment with no instance and nothing waiting is still shown to its policy
  // (which may pre-warm it). Coarser is faster: most deployments of a large trace sit at zero.
  double idle_tick_s = 120;
};

// Runs one simulation; deterministic for a workload and options. Fails only when the policy
// cannot be made.
core::Result<RunResult> simulate(const Workload& workload, const RunOptions& options);

// Runs every spec (at most `jobs` at once); always-on runs each deployment's peak need (sim/baseline.h).
core::Result<std::vector<RunResult>> simulate_all(const Workload& workload, const std::vector<PolicySpec>& specs,
                                                  int jobs, double idle_tick_s = 120);

}  // namespace zs::sim
