// `zeroserve sim`: replays recorded (or synthetic) traffic through the platform's own
// autoscaling policies on a simulated cluster and compares them side by side.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "platform/config/config.h"
#include "platform/config/units.h"
#include "sim/calibration.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "sim/workload.h"

namespace zs::cli {
namespace {

using core::Status;

// Used without --config: one CPU device priced like a small cloud VM, one deployment.
constexpr const char* kDefaultConfig = R"(devices:
  - name: cpu0
    kind: cpu
    memory: 64GiB
    price_per_hour: 0.40
deployments:
  - name: model
    model: model.gguf
    min_instances: 0
    max_instances: 32
    slots: 8
    keep_alive: 5m
    max_queue: 256
    memory: 2GiB
)";

struct SimOptions {
  std::vector<std::string> traces;
  std::string config;
  std::vector<std::string> policies;
  int devices = 0;
  int deployments = 0;
  uint64_t seed = 1;
  std::string duration;
  double time_scale = 1;
  std::string out = "sim-out";
  std::string calibration;
  std::string write_calibration;
  int jobs = 0;
  uint32_t prompt_tokens = 256;
  uint32_t output_tokens = 32;
  double idle_tick = 120;
  bool no_loop = false;
  bool quiet = false;
};

core::Result<platform::Config> read_config(const std::string& path) {
  if (path.empty()) return platform::parse_config(kDefaultConfig, "(built-in simulation config)", ".");
  std::ifstream in(path);
  if (!in) return Status::error("cannot read configuration " + path);
  std::ostringstream s;
  s << in.rdbuf();
  // Model files need not exist here: the simulator never loads them.
  return platform::parse_config(s.str(), path, std::filesystem::path(path).parent_path().string());
}

Status run_sim(const SimOptions& o) {
  if (!o.write_calibration.empty()) {
    std::ofstream out(o.write_calibration);
    out << sim::Calibration::builtin().to_json();
    if (!out) return Status::error("cannot write " + o.write_calibration);
    std::printf("wrote %s\n", o.write_calibration.c_str());
    if (o.traces.empty()) return Status::ok();
  }
  if (o.traces.empty()) return Status::error("--trace is required (a trace file, folder or synthetic:<shape>:...)");
  auto config = read_config(o.config);
  if (!config) return config.status();
  sim::Calibration calibration = sim::Calibration::builtin();
  std::string calibration_name = "built-in figures (" + calibration.source + ")";
  if (!o.calibration.empty()) {
    auto c = sim::load_calibration(o.calibration);
    if (!c) return c.status();
    calibration = std::move(c.value());
    calibration_name = o.calibration + " (" + calibration.source + ")";
  }
  std::vector<sim::PolicySpec> specs;
  std::vector<std::string> unavailable;
  if (o.policies.empty()) {
    specs = sim::default_policy_specs(&unavailable);
  } else {
    for (const auto& p : o.policies) {
      auto s = sim::parse_policy_spec(p);
      if (!s) return s.status();
      specs.push_back(s.value());
    }
  }
  double duration = 0;
  if (!o.duration.empty()) {
    auto d = platform::parse_duration(o.duration);
    if (!d || *d <= 0) return Status::error("--duration must be " + std::string(platform::kDurationUnitsHelp));
    duration = *d;
  }
  const auto t0 = std::chrono::steady_clock::now();
  sim::TraceOptions topt;
  topt.seed = o.seed;
  topt.default_prompt_tokens = o.prompt_tokens;
  topt.default_output_tokens = o.output_tokens;
  std::vector<sim::Trace> traces;
  for (const auto& t : o.traces) {
    auto tr = sim::load_trace(t, topt);
    if (!tr) return tr.status();
    traces.push_back(std::move(tr.value()));
  }
  sim::WorkloadOptions wopt;
  wopt.devices = o.devices;
  wopt.deployments = o.deployments;
  wopt.seed = o.seed;
  wopt.duration_s = duration;
  wopt.time_scale = o.time_scale;
  wopt.loop = !o.no_loop;
  auto workload = sim::build_workload(config.value(), traces, calibration, wopt);
  if (!workload) return workload.status();
  traces.clear();
  const int jobs = o.jobs > 0 ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  auto results = sim::simulate_all(workload.value(), specs, jobs, o.idle_tick);
  if (!results) return results.status();
  sim::ReportInfo info;
  info.sources = workload->sources;
  info.calibration = calibration_name;
  info.seed = o.seed;
  info.time_scale = o.time_scale;
  info.devices = workload->devices.size();
  info.deployments = workload->deployments.size();
  info.requests = workload->requests.size();
  info.duration_s = workload->duration_s;
  info.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  info.unavailable_policies = unavailable;
  ZS_RETURN_IF_ERROR(sim::write_report(o.out, info, results.value()));
  if (!o.quiet) {
    const int base = sim::always_on_index(results.value());
    std::printf("%-18s %12s %9s %8s %10s %10s %10s %8s\n", "policy", "cost", "vs-peak", "cold", "ttft-p50", "ttft-p95",
                "ttft-p99", "refused");
    for (const auto& r : results.value())
      std::printf("%-18s %12.2f %8.1f%% %7.2f%% %9.3fs %9.3fs %9.3fs %8llu\n", r.label.c_str(), r.cost,
                  base >= 0 && results.value()[base].cost > 0 ? 100 * r.cost / results.value()[base].cost : 0.0,
                  100 * r.cold_fraction(), r.ttft_s.p50, r.ttft_s.p95, r.ttft_s.p99,
                  static_cast<unsigned long long>(r.refused()));
    std::printf("%llu requests, %zu deployments, %zu devices, %.0f s simulated per policy in %.2f s; report in %s/\n",
                static_cast<unsigned long long>(info.requests), info.deployments, info.devices, info.duration_s,
                info.wall_s, o.out.c_str());
  }
  return Status::ok();
}

}  // namespace

void register_sim_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<SimOptions>();
  auto* cmd = app.add_subcommand("sim", "Replay traffic through the autoscaling policies on a simulated cluster");
  cmd->add_option("--trace", o->traces,
                  "trace to replay (repeatable): a file or folder (Azure LLM 2023 / Functions 2019 / Functions 2021 "
                  "CSV, BurstGPT CSV, Mooncake JSONL), <format>:<path>, or synthetic:poisson|bursty|diurnal:rate=..,...");
  cmd->add_option("--config", o->config, "deployment configuration (devices, deployments); default: a built-in one");
  cmd->add_option("--policy", o->policies,
                  "policy to compare (repeatable): [label=]name[:keep_alive=..,target_concurrency=..,min_instances=..,"
                  "max_instances=..]; 'always-on' is peak provisioning; default: always-on, keep-alive-10m, and every "
                  "platform policy among hybrid (the default), concurrency, rules, histogram, predictive");
  cmd->add_option("--devices", o->devices, "devices in the cluster (the config's are cloned); default: the config's")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--deployments", o->deployments, "deployments (the config's are cloned); default: the config's")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->seed, "seed for everything random (arrivals inside a minute, request spreading)");
  cmd->add_option("--duration", o->duration, "simulated time (e.g. 7d); shorter traces loop, longer ones are cut");
  cmd->add_option("--time-scale", o->time_scale, "replay speed: arrival times are divided by this")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out", o->out, "folder for report.md, report.json, instances.svg, ttft_cdf.svg")
      ->capture_default_str();
  cmd->add_option("--calibration", o->calibration, "service model (JSON, see docs/simulator.md); default: built-in");
  cmd->add_option("--write-calibration", o->write_calibration, "write the built-in calibration to this file");
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "prompt tokens for traces without sizes")->capture_default_str();
  cmd->add_option("--output-tokens", o->output_tokens, "output tokens for traces without sizes")->capture_default_str();
  cmd->add_option("--jobs", o->jobs, "policies simulated at once (default: the cores)");
  cmd->add_option("--idle-tick", o->idle_tick,
                  "seconds between looks at a deployment at zero (pre-warming policies); smaller is slower")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--no-loop", o->no_loop, "play each trace once even when --duration is longer (a quiet tail)");
  cmd->add_flag("--quiet", o->quiet, "print nothing but errors");
  cmd->callback([o, &exit_code] { exit_code = report(run_sim(*o)); });
}

}  // namespace zs::cli
