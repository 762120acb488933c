#pragma once
// Keeps what autoscaling policies learned (idle-time histograms, arrival profiles) across
// restarts of the daemon, in a small SQLite file (WAL), one row per deployment.
#include <memory>
#include <optional>
#include <string>

#include "core/mutex.h"
#include "core/status.h"

struct sqlite3;

namespace zs::platform {

class PolicyStateStore {
 public:
  static core::Result<std::unique_ptr<PolicyStateStore>> open(const std::string& path);
  ~PolicyStateStore();

  core::Status save(const std::string& deployment, const std::string& policy, const std::string& state);
  // The state saved for this deployment by the same policy, if any.
  std::optional<std::string> load(const std::string& deployment, const std::string& policy) const;

 private:
  PolicyStateStore() = default;
  mutable core::Mutex mutex_;
  sqlite3* db_ GUARDED_BY(mutex_) = nullptr;  // one connection: statements on it are serialized
};

}  // namespace zs::platform
