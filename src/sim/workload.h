#pragma once
// What one simulation replays: devices, deployments and the requests addressed to them. Built
// from the configuration file (device and deployment templates), the traces and the
// calibration, by cloning the templates to the cluster size asked for and mapping the traces'
// streams (functions, services) onto the deployments.
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "platform/config/config.h"
#include "sim/calibration.h"
#include "sim/trace.h"

namespace zs::sim {

struct SimRequest {
  double arrival_s = 0;
  uint32_t deployment = 0;
  uint32_t prompt_tokens = 0;
  uint32_t output_tokens = 0;
};

struct SimDeployment {
  platform::DeploymentConfig config;  // name, slots, min/max, keep_alive, max_queue, autoscale ...
  uint32_t device = 0;                // index into Workload::devices
  uint64_t memory_bytes = 0;          // the config's memory, else the calibration's
  ServiceProfile profile;             // the service model of its device
};

struct Workload {
  std::vector<platform::DeviceConfig> devices;
  std::vector<SimDeployment> deployments;
  std::vector<SimRequest> requests;  // sorted by arrival
  double duration_s = 0;
  double epoch_s = 0;  // Unix time of simulated time 0: the first trace's, when it records one
  std::vector<std::string> sources;  // the traces, for reports
  uint64_t streams = 0;              // functions / services across the traces
};

struct WorkloadOptions {
  int devices = 0;      // 0: the configuration's devices as they are
  int deployments = 0;  // 0: the configuration's deployments as they are
  uint64_t seed = 1;
  double duration_s = 0;  // 0: the longest trace; longer traces are cut, shorter ones loop
  double time_scale = 1;  // arrival times are divided by this: 2 replays twice as fast
  bool loop = true;       // false: a trace shorter than the duration plays once, then quiet
};

// Devices: the configuration's, cloned round-robin to `devices` ("cpu0" -> "cpu0-0".."cpu0-99").
// Deployments: the configuration's, cloned round-robin to `deployments` ("chat" -> "chat-0"..);
// deployment k is pinned to device k mod devices. Streams map onto deployments: with at least
// as many streams as deployments, stream s goes to deployment s mod N (streams merge); with
// fewer, the deployments are dealt out among the streams and each request of a stream goes to
// one of its deployments, drawn at random (seeded), so that a single-service trace spreads
// over many deployments.
core::Result<Workload> build_workload(const platform::Config& config, const std::vector<Trace>& traces,
                                      const Calibration& calibration, const WorkloadOptions& options);

}  // namespace zs::sim
