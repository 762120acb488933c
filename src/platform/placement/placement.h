#pragma once
// Memory accounting per device: which instance holds how many bytes where. A plain class with
// no clock and no I/O, so that the daemon and the simulator drive the same decisions. It only
// counts what callers reserve; it does not measure processes.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "platform/config/config.h"

namespace zs::platform {

class Placement {
 public:
  explicit Placement(std::vector<DeviceConfig> devices);

  // Reserves `bytes` for `instance_id` and returns the device it landed on. A non-empty
  // `preferred_device` is the only device tried: a deployment pinned to a GPU must not silently
  // run on the CPU at a different speed and price; the caller evicts (eviction_candidates) and
  // retries instead. An empty one takes the first device, in configuration order, with room.
  // Fails when it does not fit, when the device is unknown, or when the instance already holds
  // a reservation.
  core::Result<std::string> reserve(const std::string& instance_id, const std::string& preferred_device,
                                    uint64_t bytes);
  // Moves an instance's reservation to `device` (a sleeping accelerator instance's memory to
  // the host, and back when it wakes). Fails, leaving it where it is, when the instance holds
  // none, the device is unknown, or its bytes do not fit there.
  core::Status move(const std::string& instance_id, const std::string& device);
  // The kind of a device ("cpu", "cuda"), or "" for an unknown one.
  std::string kind(const std::string& device) const;
  // Returns the instance's bytes to its device; unknown ids are ignored so that a cleanup path
  // may release twice.
  void release(const std::string& instance_id);

  uint64_t used(const std::string& device) const;      // 0 for an unknown device
  uint64_t free(const std::string& device) const;      // 0 for an unknown device
  uint64_t capacity(const std::string& device) const;  // 0 for an unknown device
  // The device an instance's reservation is on, or "" when it holds none.
  std::string device_of(const std::string& instance_id) const;

  // Instances on `device` whose release would free enough for `bytes_needed`, and no more of
  // them than needed. `rank` (called without the lock held) says which may go: 0 none, and
  // lower ranks first (a sleeping instance before an idle one); within a rank, least recently
  // reserved first. Empty when it already fits, or when even releasing every candidate would
  // not make room (evicting them would then be for nothing).
  std::vector<std::string> eviction_candidates(const std::string& device, uint64_t bytes_needed,
                                               const std::function<int(const std::string& instance_id)>& rank) const;

 private:
  struct Device {
    DeviceConfig config;
    uint64_t used = 0;
  };
  struct Reservation {
    std::string device;
    uint64_t bytes = 0;
    uint64_t sequence = 0;  // order of reservation: smaller = less recent
  };

  Device* find_locked(const std::string& name) REQUIRES(mutex_);
  const Device* find_locked(const std::string& name) const REQUIRES(mutex_);
  static std::string no_room_message(const Device& d, uint64_t bytes);

  mutable core::Mutex mutex_;
  std::vector<Device> devices_ GUARDED_BY(mutex_);  // configuration order
  std::map<std::string, Reservation> reservations_ GUARDED_BY(mutex_);
  uint64_t next_sequence_ GUARDED_BY(mutex_) = 0;
};

}  // namespace zs::platform
