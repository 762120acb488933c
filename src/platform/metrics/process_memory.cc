#include "platform/metrics/process_memory.h"

#include <unistd.h>

#include <fstream>

namespace zs::platform {

std::optional<uint64_t> process_resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return std::nullopt;
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) return std::nullopt;
  return resident_pages * static_cast<uint64_t>(page);
}

void track_process_memory(MetricsRegistry& registry) {
  registry.on_collect([&registry] {
    if (auto rss = process_resident_memory_bytes())
      registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").set(static_cast<double>(*rss));
  });
}

}  // namespace zs::platform
