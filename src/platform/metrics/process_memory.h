#pragma once
// The process's own resource gauges, under the names Prometheus client libraries use:
// process_resident_memory_bytes (resident set size, from /proc/self/statm).
#include <cstdint>
#include <optional>

#include "platform/metrics/metrics_registry.h"

namespace zs::platform {

// The resident set size of this process in bytes, or nullopt where /proc/self/statm cannot be read.
std::optional<uint64_t> process_resident_memory_bytes();

// Makes every render of `registry` report process_resident_memory_bytes.
void track_process_memory(MetricsRegistry& registry);

}  // namespace zs::platform
