#pragma once
// The simulator's outputs in one folder: report.md (for people), report.json (for tools) and
// two hand-written SVG plots — live instances over time per policy (instances.svg) and the
// time-to-first-token CDF per policy (ttft_cdf.svg).
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/simulator.h"

namespace zs::sim {

struct ReportInfo {
  std::vector<std::string> sources;
  std::string calibration;
  uint64_t seed = 1;
  double time_scale = 1;
  size_t devices = 0;
  size_t deployments = 0;
  uint64_t requests = 0;
  double duration_s = 0;
  double wall_s = 0;  // the whole comparison
  std::vector<std::string> unavailable_policies;
};

// The index of the always-on run in `results`, or -1.
int always_on_index(const std::vector<RunResult>& results);

std::string report_json(const ReportInfo& info, const std::vector<RunResult>& results);
std::string report_markdown(const ReportInfo& info, const std::vector<RunResult>& results);
std::string instances_svg(const std::vector<RunResult>& results);
std::string ttft_cdf_svg(const std::vector<RunResult>& results);

// Writes the four files into `dir` (created when missing).
core::Status write_report(const std::string& dir, const ReportInfo& info, const std::vector<RunResult>& results);

}  // namespace zs::sim
