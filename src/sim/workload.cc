#include "sim/workload.h"

#include <algorithm>
#include <cmath>

#include "sim/random.h"

namespace zs::sim {

using core::Status;

core::Result<Workload> build_workload(const platform::Config& config, const std::vector<Trace>& traces,
                                      const Calibration& calibration, const WorkloadOptions& options) {
  if (config.devices.empty()) return Status::error("the configuration declares no devices");
  if (config.deployments.empty()) return Status::error("the configuration declares no deployments");
  if (traces.empty()) return Status::error("no trace to replay (--trace)");
  if (options.devices < 0 || options.deployments < 0) return Status::error("--devices and --deployments must be >= 0");
  if (!(options.time_scale > 0)) return Status::error("--time-scale must be > 0");
  if (calibration.profiles.empty()) return Status::error("the calibration has no profiles");
  Workload w;

  const size_t n_dev = options.devices > 0 ? static_cast<size_t>(options.devices) : config.devices.size();
  const bool clone_dev = n_dev != config.devices.size();
  for (size_t i = 0; i < n_dev; ++i) {
    platform::DeviceConfig d = config.devices[i % config.devices.size()];
    if (clone_dev) d.name += "-" + std::to_string(i);
    w.devices.push_back(d);
  }
  const size_t n_dep = options.deployments > 0 ? static_cast<size_t>(options.deployments) : config.deployments.size();
  const bool clone_dep = n_dep != config.deployments.size();
  for (size_t k = 0; k < n_dep; ++k) {
    SimDeployment d;
    d.config = config.deployments[k % config.deployments.size()];
    if (clone_dep) d.config.name += "-" + std::to_string(k);
    if (clone_dev) {
      d.device = static_cast<uint32_t>(k % n_dev);
    } else {
      d.device = 0;
      for (size_t i = 0; i < w.devices.size(); ++i)
        if (w.devices[i].name == d.config.device) d.device = static_cast<uint32_t>(i);
    }
    const auto& dev = w.devices[d.device];
    d.config.device = dev.name;
    // The config's device base name picks the profile, so "gpu0-17" finds a "gpu0" profile.
    d.profile = calibration.profile_for(config.devices[d.device % config.devices.size()].name, dev.kind);
    d.memory_bytes = d.config.memory_bytes ? *d.config.memory_bytes : d.profile.memory_bytes;
    d.config.memory_bytes = d.memory_bytes;
    w.deployments.push_back(std::move(d));
  }

  double longest = 0;
  uint64_t total = 0;
  for (const auto& t : traces) {
    longest = std::max(longest, t.span_s / options.time_scale);
    total += t.requests.size();
    w.streams += t.streams;
    w.sources.push_back(t.name + " (" + t.format + ", " + std::to_string(t.requests.size()) + " requests, " +
                        std::to_string(t.streams) + (t.streams == 1 ? " stream)" : " streams)"));
  }
  w.duration_s = options.duration_s > 0 ? options.duration_s : longest;
  w.epoch_s = traces.front().origin_unix_s;
  if (!(w.duration_s > 0)) return Status::error("the traces cover no time; give --duration");

  Random rng(options.seed * 0xA24BAED4963EE407ull + 3);
  const uint64_t streams = std::max<uint64_t>(1, w.streams);
  uint64_t stream_base = 0;
  for (const auto& t : traces) {
    const double span = t.span_s / options.time_scale;
    if (!t.requests.empty() && !(span > 0)) return Status::error(t.name + ": the trace covers no time");
    for (double offset = 0; !t.requests.empty() && offset < w.duration_s && (options.loop || offset == 0); offset += span) {
      for (const auto& r : t.requests) {
        const double at = offset + r.arrival_s / options.time_scale;
        if (at >= w.duration_s) break;
        const uint64_t s = stream_base + r.stream;
        uint64_t dep;
        if (streams >= n_dep) {
          dep = s % n_dep;
        } else {
          // Deployments s, s + streams, s + 2*streams, ... serve stream s.
          const uint64_t share = (n_dep - s + streams - 1) / streams;
          dep = s + streams * rng.below(share);
        }
        w.requests.push_back({at, static_cast<uint32_t>(dep), r.prompt_tokens, r.output_tokens});
      }
    }
    stream_base += t.streams;
  }
  if (traces.size() > 1 || total == 0)
    std::stable_sort(w.requests.begin(), w.requests.end(),
                     [](const SimRequest& a, const SimRequest& b) { return a.arrival_s < b.arrival_s; });
  return w;
}

}  // namespace zs::sim
