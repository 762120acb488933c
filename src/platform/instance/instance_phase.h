#pragma once
// The phases of one run of an instance, as the fleet reports them and the ledger bills them:
// starting -> ready <-> idle <-> sleeping -> draining -> stopped. kReady is ready with at least
// one request in flight, kIdle ready with none: the time an instance is paid for but does
// nothing. kSleeping is idle with its cache and threads given back (billed at the device's
// sleep price); the next request wakes it straight into kReady.
// Defined once here for both sides (the fleet core emits phases, the ledger stores their names).
namespace zs::platform {

enum class InstancePhase { kStarting, kReady, kIdle, kDraining, kSleeping };

inline const char* instance_phase_name(InstancePhase phase) {  // "starting", "ready", "idle", "draining", "sleeping"
  switch (phase) {
    case InstancePhase::kStarting: return "starting";
    case InstancePhase::kReady: return "ready";
    case InstancePhase::kIdle: return "idle";
    case InstancePhase::kDraining: return "draining";
    case InstancePhase::kSleeping: return "sleeping";
  }
  return "unknown";
}

}  // namespace zs::platform
