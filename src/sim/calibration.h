#pragma once
// How fast one instance is: the service model of the simulator. Measured on this machine by a
// benchmark (or by hand) and kept in a JSON file, so that the simulator can model devices that
// are not here (a GPU entry next to the CPU one). Format (docs/simulator.md):
//
//   {"format": "zeroserve-calibration/1",
//    "source": "what measured it",
//    "profiles": {
//      "cpu":  {"cold_start_s": 0.1, "wake_s": 0.0005, "request_overhead_s": [0.002, 0.003, 0.006],
//               "prefill_tokens_per_s": 700, "memory_bytes": 1073741824,
//               "decode_tokens_per_s": [[1, 15], [4, 28], [16, 40]]},
//      "cuda": {...}}}
//
// cold_start_s and request_overhead_s vary from one instance or request to the next: each is one
// value or evenly spaced quantiles (Spread). decode_tokens_per_s is the aggregate decode throughput of one instance at each batch size
// (sequences decoding together), linear in between and flat past the last entry. A device
// uses the profile named after it, else the one named after its kind, else "default", else
// the first.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace zs::sim {

// A figure that varies: evenly spaced quantiles, from the 0th to the 100th percentile (one
// value: always that; none: 0). A draw at u in [0, 1) is linear between neighbouring quantiles,
// so that uniform draws reproduce the measured distribution.
struct Spread {
  std::vector<double> quantiles;
  Spread() = default;
  Spread(double value) : quantiles{value} {}  // NOLINT: a single figure reads as one
  explicit Spread(std::vector<double> q) : quantiles(std::move(q)) {}
  double at(double u) const;
  bool varies() const { return quantiles.size() > 1; }
  bool operator==(const Spread&) const = default;
};

struct ServiceProfile {
  // Process start to ready, weights in the page cache; each start draws its own.
  Spread cold_start_s = 0.1;
  // Asked to stop until the fleet has seen the exit, billed: the worker's own exit plus half
  // of the daemon's 20 ms tick on average.
  double stop_s = 0.02;
  // A sleeping instance woken by a request: from the request's arrival to its first step.
  double wake_s = 0.0005;
  // What a request spends outside the engine's steps before its first token: the gateway's and
  // the worker's HTTP hops, tokenization, streaming the token back. Requests pay it side by
  // side, not in turn; each draws its own.
  Spread request_overhead_s;
  double prefill_tokens_per_s = 700;  // prompt tokens per second (one prompt at a time)
  uint64_t memory_bytes = 1ull << 30; // per instance, when the deployment does not say
  std::vector<std::pair<int, double>> decode;  // (batch size, aggregate tokens/s), batch ascending

  // Aggregate decode tokens per second with `batch` sequences decoding.
  double decode_rate(int batch) const;
  core::Status validate(const std::string& where) const;
};

struct Calibration {
  std::string source;
  std::map<std::string, ServiceProfile> profiles;

  // The profile for a device (by name, then kind, then "default", then the first one).
  const ServiceProfile& profile_for(const std::string& device_name, const std::string& device_kind) const;
  std::string to_json() const;

  // Built-in figures for the CPU (a small quantized model on a few cores) and an example GPU.
  static Calibration builtin();
};

core::Result<Calibration> parse_calibration(const std::string& json_text, const std::string& source_name);
core::Result<Calibration> load_calibration(const std::string& path);

}  // namespace zs::sim
