#include "platform/placement/placement.h"

#include <algorithm>

#include "platform/config/units.h"

namespace zs::platform {

Placement::Placement(std::vector<DeviceConfig> devices) {
  devices_.reserve(devices.size());
  for (DeviceConfig& d : devices) devices_.push_back({std::move(d), 0});
}

Placement::Device* Placement::find_locked(const std::string& name) {
  for (Device& d : devices_) {
    if (d.config.name == name) return &d;
  }
  return nullptr;
}

const Placement::Device* Placement::find_locked(const std::string& name) const {
  return const_cast<Placement*>(this)->find_locked(name);
}

std::string Placement::no_room_message(const Device& d, uint64_t bytes) {
  return "deployment needs " + format_bytes(bytes) + " but device " + d.config.name + " has " +
         format_bytes(d.config.memory_bytes - d.used) + " free of " + format_bytes(d.config.memory_bytes);
}

core::Result<std::string> Placement::reserve(const std::string& instance_id, const std::string& preferred_device,
                                             uint64_t bytes) {
  core::MutexLock lock(mutex_);
  if (auto it = reservations_.find(instance_id); it != reservations_.end()) {
    return core::Status::failed_precondition("instance " + instance_id + " already holds " + format_bytes(it->second.bytes) +
                               " on device " + it->second.device);
  }
  auto fits = [&](const Device& d) { return bytes <= d.config.memory_bytes - d.used; };
  Device* chosen = nullptr;
  if (!preferred_device.empty()) {
    chosen = find_locked(preferred_device);
    if (!chosen) {
      std::string names;
      for (const Device& d : devices_) names += (names.empty() ? "" : ", ") + d.config.name;
      return core::Status::not_found("no device named " + preferred_device + "; devices: " + names);
    }
    if (!fits(*chosen)) return core::Status::resource_exhausted(no_room_message(*chosen, bytes));
  } else {
    for (Device& d : devices_) {
      if (fits(d)) {
        chosen = &d;
        break;
      }
    }
    if (!chosen) {
      if (devices_.empty()) return core::Status::resource_exhausted("no devices to place an instance on");
      std::string message = "deployment needs " + format_bytes(bytes) + " but no device has room:";
      for (size_t i = 0; i < devices_.size(); ++i) {
        const Device& d = devices_[i];
        message += std::string(i ? "," : "") + " " + d.config.name + " has " +
                   format_bytes(d.config.memory_bytes - d.used) + " free of " + format_bytes(d.config.memory_bytes);
      }
      return core::Status::resource_exhausted(message);
    }
  }
  chosen->used += bytes;
  reservations_[instance_id] = {chosen->config.name, bytes, next_sequence_++};
  return chosen->config.name;
}

core::Status Placement::move(const std::string& instance_id, const std::string& device) {
  core::MutexLock lock(mutex_);
  auto it = reservations_.find(instance_id);
  if (it == reservations_.end()) return core::Status::not_found("instance " + instance_id + " holds no reservation");
  Reservation& r = it->second;
  if (r.device == device) return core::Status::ok();
  Device* to = find_locked(device);
  if (!to) return core::Status::not_found("no device named " + device);
  if (r.bytes > to->config.memory_bytes - to->used) return core::Status::resource_exhausted(no_room_message(*to, r.bytes));
  if (Device* from = find_locked(r.device)) from->used -= std::min(from->used, r.bytes);
  to->used += r.bytes;
  r.device = device;
  r.sequence = next_sequence_++;
  return core::Status::ok();
}

std::string Placement::kind(const std::string& device) const {
  core::MutexLock lock(mutex_);
  const Device* d = find_locked(device);
  return d ? d->config.kind : std::string();
}

void Placement::release(const std::string& instance_id) {
  core::MutexLock lock(mutex_);
  auto it = reservations_.find(instance_id);
  if (it == reservations_.end()) return;
  if (Device* d = find_locked(it->second.device)) d->used -= std::min(d->used, it->second.bytes);
  reservations_.erase(it);
}

uint64_t Placement::used(const std::string& device) const {
  core::MutexLock lock(mutex_);
  const Device* d = find_locked(device);
  return d ? d->used : 0;
}

uint64_t Placement::free(const std::string& device) const {
  core::MutexLock lock(mutex_);
  const Device* d = find_locked(device);
  return d ? d->config.memory_bytes - d->used : 0;
}

uint64_t Placement::capacity(const std::string& device) const {
  core::MutexLock lock(mutex_);
  const Device* d = find_locked(device);
  return d ? d->config.memory_bytes : 0;
}

std::string Placement::device_of(const std::string& instance_id) const {
  core::MutexLock lock(mutex_);
  auto it = reservations_.find(instance_id);
  return it == reservations_.end() ? std::string() : it->second.device;
}

std::vector<std::string> Placement::eviction_candidates(
    const std::string& device, uint64_t bytes_needed,
    const std::function<int(const std::string& instance_id)>& rank) const {
  struct Held {
    std::string id;
    uint64_t bytes;
    uint64_t sequence;
    int rank = 0;
  };
  std::vector<Held> held;
  uint64_t free_now = 0;
  {
    // Snapshot, then ask the predicate unlocked: it belongs to the caller, which may well
    // take its own locks or call back into this class.
    core::MutexLock lock(mutex_);
    const Device* d = find_locked(device);
    if (!d) return {};
    free_now = d->config.memory_bytes - d->used;
    for (const auto& [id, r] : reservations_) {
      if (r.device == device) held.push_back({id, r.bytes, r.sequence});
    }
  }
  if (bytes_needed <= free_now) return {};
  for (Held& h : held) h.rank = rank(h.id);
  std::sort(held.begin(), held.end(),
            [](const Held& a, const Held& b) { return std::pair(a.rank, a.sequence) < std::pair(b.rank, b.sequence); });
  std::vector<std::string> out;
  uint64_t freed = free_now;
  for (const Held& h : held) {
    if (h.rank <= 0) continue;
    out.push_back(h.id);
    freed += h.bytes;
    if (freed >= bytes_needed) return out;
  }
  return {};
}

}  // namespace zs::platform
