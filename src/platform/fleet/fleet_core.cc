#include "platform/fleet/fleet_core.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <tuple>

namespace zs::platform {

namespace {

constexpr double kPast = -std::numeric_limits<double>::infinity();
constexpr size_t kTtftSamples = 4096;  // at most this many of the last minute's
constexpr double kTtftWindowS = 60;
// A ready instance is restarted after this many liveness probes failed in a row; after a
// failure the next probe comes after kProbeRetryS instead of the usual interval.
constexpr int kProbeFailuresToRestart = 3;
constexpr double kProbeRetryS = 1;

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  return buf;
}

double backoff_s(int consecutive_failures) { return std::min(30, 1 << std::min(consecutive_failures, 5)); }

int class_index(RequestClass c) { return c == RequestClass::kInteractive ? 0 : 1; }

}  // namespace

std::string DeploymentStatus::state() const {
  if (instances_ready > 0) return "ready";
  if (instances_sleeping > 0) return "sleeping";
  if (instances_starting > 0) return "starting";
  return "idle";
}

const char* start_kind(const Lease& lease) {
  if (lease.cold_start_ms >= 0) return "cold";
  return lease.woke ? "wake" : "warm";
}

DeploymentSpec scheduling_spec(const DeploymentConfig& d, uint64_t memory_bytes, double price_per_second) {
  DeploymentSpec s;
  s.name = d.name;
  s.min_instances = d.min_instances;
  s.max_instances = d.max_instances;
  s.slots = d.slots;
  s.max_queue = d.max_queue;
  s.batch_max_instances = d.batch_max_instances;
  s.keep_alive_s = d.keep_alive_s;
  s.sleep_after_s = d.sleep_after_s;
  s.request_timeout_s = d.request_timeout_s;
  s.priority = d.priority;
  s.device = d.device;
  s.price_per_second = price_per_second;
  s.policy = d.autoscale.policy;
  s.policy_options = d.autoscale.options;
  s.ttft_objective_s = d.ttft_objective_s;
  s.memory_bytes = memory_bytes;
  // Loading is mostly mapping and page faults: allow 30 s plus 20 s per GiB of model.
  s.start_timeout_s = d.start_timeout_s > 0 ? d.start_timeout_s : 30 + 20.0 * memory_bytes / (1ull << 30);
  return s;
}

void FleetActions::clear() {
  starts.clear();
  signals.clear();
  sleeps.clear();
  probes.clear();
  dispatches.clear();
  failures.clear();
  phases.clear();
  decisions.clear();
  notes.clear();
  errors.clear();
}

bool FleetActions::empty() const {
  return starts.empty() && signals.empty() && sleeps.empty() && probes.empty() && dispatches.empty() && failures.empty() &&
         phases.empty() && decisions.empty() && notes.empty() &&
         errors.empty();
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

// The lifecycle: kStarting -> kReady <-> kSleeping -> kDraining -> gone (instance_exited). A
// ready instance with nothing in flight reports the phase kIdle.
namespace {
enum class InstanceState { kStarting, kReady, kDraining, kSleeping };
constexpr int kStates = 4;
}  // namespace

struct FleetCore::Instance {
  InstanceKey key = 0;
  std::string id;
  InstanceState state = InstanceState::kStarting;
  double started = 0;
  double idle_since = 0;
  // Since the last interactive request finished: batch work alone does not keep an instance
  // beyond what batch_max_instances allows.
  double interactive_idle_since = 0;
  double last_health = 0;
  double drain_started = 0;
  int in_flight = 0;        // both classes
  int batch_in_flight = 0;  // of which batch requests
  // A request to it failed (e.g. connection refused): no new requests go to it until it
  // exits or passes a probe.
  bool unreachable = false;
  bool probing = false;  // a probe is out; its result has not come back
  int failed_probes = 0;  // liveness probes failed in a row
  bool reported_ready = false;
  bool cannot_sleep = false;  // it refused to sleep for a reason other than being busy
  // Its runtime said it will end by itself soon (a cluster job's time limit): a replacement
  // starts, and it drains once the replacement is ready. Dispatch prefers others meanwhile,
  // and the policy no longer sees it.
  bool retiring = false;
  InstanceKey replacement = 0;  // the instance started to replace it; 0: none yet
  // While asleep with its reservation moved to the host: the accelerator it came from; empty
  // otherwise.
  std::string home_device;
  // A replacement takes over its predecessor's idleness at ready (keep-alive counts on);
  // < 0: idle from ready, as any new instance.
  double idle_since_at_ready = -1;
  InstancePhase phase = InstancePhase::kStarting;
};

struct FleetCore::Waiter {
  uint64_t tag;
  RequestClass cls;
  int order;
  double enqueued;
  bool cold;  // no instance was ready when it arrived
};

struct FleetCore::Deployment {
  int index = 0;
  DeploymentSpec spec;
  std::vector<std::unique_ptr<Instance>> instances;
  std::deque<Waiter> queue;
  int queued_by_class[2] = {0, 0};
  int consecutive_failures = 0;
  double next_start_allowed = kPast;
  uint64_t cold_starts = 0;
  uint64_t wakes = 0;
  uint64_t crashes = 0;
  bool removed = false;
  double prewarm_until = kPast;  // admin pre-warm: hold at least one instance until then
  int arrivals = 0;              // interactive, since the policy's last observation
  std::unique_ptr<ScalingPolicy> policy;
  std::deque<std::pair<double, double>> ttft_samples;  // (time, seconds) of the last minute
  DeploymentObservation obs;                           // reused between evaluations

  // Kept with every change of an instance's state or load, so that reading is O(1).
  int by_state[kStates] = {};
  int in_flight_total = 0;

  int count(InstanceState s) const { return by_state[static_cast<int>(s)]; }
  int in_flight() const { return in_flight_total; }
  void add(Instance& i) { ++by_state[static_cast<int>(i.state)]; }
  void set_state(Instance& i, InstanceState s) {
    --by_state[static_cast<int>(i.state)];
    ++by_state[static_cast<int>(s)];
    i.state = s;
  }
  void forget(const Instance& i) {
    --by_state[static_cast<int>(i.state)];
    in_flight_total -= i.in_flight;
  }
  int batch_in_flight() const {
    int n = 0;
    for (const auto& i : instances) n += i->batch_in_flight;
    return n;
  }
  int queued(RequestClass c) const { return queued_by_class[class_index(c)]; }
  double ttft_p95(double now) {
    while (!ttft_samples.empty() && now - ttft_samples.front().first > kTtftWindowS) ttft_samples.pop_front();
    if (ttft_samples.empty()) return 0;
    std::vector<double> v;
    v.reserve(ttft_samples.size());
    for (const auto& [t, s] : ttft_samples) v.push_back(s);
    const size_t k = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(v.size()))) - 1;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  }
};

FleetCore::FleetCore(FleetCoreOptions options) : options_(std::move(options)), placement_(options_.devices) {
  for (const DeviceConfig& dev : options_.devices)
    if (dev.kind == "cpu") {
      host_device_ = dev.name;
      break;
    }
}

FleetCore::~FleetCore() = default;

// ---------------------------------------------------------------------------------------------
// Deployments
// ---------------------------------------------------------------------------------------------

void FleetCore::set_deployments(std::vector<DeploymentSpec> specs, double now, FleetActions& out) {
  std::map<std::string, bool> keep;
  for (auto& spec : specs) {
    keep[spec.name] = true;
    core::Result<std::unique_ptr<ScalingPolicy>> policy =
        options_.make_policy ? options_.make_policy(spec) : make_scaling_policy(spec.policy, spec.policy_options);
    if (!policy) {  // the config layer validates names; keep serving with the default
      out.errors.push_back(spec.name + ": " + policy.status().message() + "; using the " +
                           std::string(kDefaultScalingPolicy) + " policy");
      policy = make_scaling_policy(kDefaultScalingPolicy, spec.policy_options);
    }
    if (!spec.policy_state.empty()) {
      core::Status st = policy.value()->restore_state(spec.policy_state);
      if (!st) out.errors.push_back(spec.name + ": ignoring saved policy state: " + st.message());
    }
    auto it = by_name_.find(spec.name);
    if (it == by_name_.end()) {
      auto d = std::make_unique<Deployment>();
      d->index = static_cast<int>(deployments_.size());
      d->spec = std::move(spec);
      d->policy = std::move(policy.value());
      by_name_[d->spec.name] = d->index;
      deployments_.push_back(std::move(d));
      continue;
    }
    Deployment& d = *deployments_[it->second];
    const bool replace = d.spec.fingerprint != spec.fingerprint;
    d.spec = std::move(spec);
    d.policy = std::move(policy.value());
    if (replace)
      for (auto& inst : d.instances)
        if (inst->state != InstanceState::kDraining) drain(d, *inst, "configuration changed", now, out);
  }
  for (auto it = by_name_.begin(); it != by_name_.end();) {
    if (keep.count(it->first)) {
      ++it;
      continue;
    }
    Deployment& d = *deployments_[it->second];
    d.removed = true;
    fail_waiters(d, {core::Status::not_found("deployment '" + d.spec.name + "' was removed"), 1}, out,
                 [](const Waiter&) { return true; });
    for (auto& inst : d.instances)
      if (inst->state != InstanceState::kDraining) drain(d, *inst, "deployment removed", now, out);
    it = by_name_.erase(it);
  }
}

int FleetCore::deployment_index(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

std::vector<std::string> FleetCore::deployment_names() const {
  std::vector<std::string> names;
  for (const auto& d : deployments_)
    if (!d->removed) names.push_back(d->spec.name);
  std::sort(names.begin(), names.end());
  return names;
}

const DeploymentSpec& FleetCore::spec(int deployment) const { return deployments_[deployment]->spec; }

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

void FleetCore::acquire(int dep, RequestClass cls, int order, uint64_t tag, double now, FleetActions& out,
                        double waiting_since) {
  Deployment& d = *deployments_[dep];
  if (d.removed) {
    out.failures.push_back({tag, {core::Status::not_found("unknown deployment '" + d.spec.name + "'"), 0}});
    return;
  }
  if (const int waiting = d.queued(cls); waiting >= d.spec.max_queue) {
    out.failures.push_back({tag,
                            {core::Status::resource_exhausted(
                                 "deployment '" + d.spec.name + "' has " + std::to_string(waiting) + " " +
                                 std::string(request_class_name(cls)) + " requests waiting (its max_queue); retry later"),
                             2}});
    return;
  }
  if (cls == RequestClass::kInteractive) ++d.arrivals;
  const bool cold = d.count(InstanceState::kReady) == 0 && d.count(InstanceState::kSleeping) == 0;
  const Waiter w{tag, cls, order, std::min(now, waiting_since), cold};
  // Interactive before batch, then higher order, then arrival order.
  auto key = [](const Waiter& x) { return std::make_pair(x.cls == RequestClass::kInteractive ? 1 : 0, x.order); };
  const bool was_empty = d.queue.empty();
  if (was_empty || !(key(d.queue.back()) < key(w))) {
    d.queue.push_back(w);  // the common case: no one of lower rank waits
  } else {
    auto pos = std::find_if(d.queue.begin(), d.queue.end(), [&](const Waiter& o) { return key(o) < key(w); });
    d.queue.insert(pos, w);
  }
  ++d.queued_by_class[class_index(cls)];
  queue_changed(d, was_empty);
  dispatch(d, now, out);
}

bool FleetCore::cancel(uint64_t tag) {
  for (auto& d : deployments_)
    for (auto it = d->queue.begin(); it != d->queue.end(); ++it)
      if (it->tag == tag) {
        --d->queued_by_class[class_index(it->cls)];
        d->queue.erase(it);
        queue_changed(*d, false);
        return true;
      }
  return false;
}

void FleetCore::queue_changed(Deployment& d, bool was_empty) {
  const bool empty = d.queue.empty();
  if (was_empty == empty) return;
  int& n = waiting_on_device_[d.spec.device];
  n += empty ? -1 : 1;
}

// Gives queued requests to ready instances with a free slot, least loaded first (a sleeping
// instance counts as an idle one; between equals an awake one goes first, so that nothing is
// woken while an idle awake instance waits). Batch requests need a slot nobody uses;
// interactive ones count only interactive requests against the slots, so they never wait
// behind batch work (the worker pauses it for them). The queue is ordered interactive first,
// and a batch request needs more than an interactive one, so the first request that cannot be
// placed ends the round.
void FleetCore::dispatch(Deployment& d, double now, FleetActions& out) {
  while (!d.queue.empty()) {
    const bool batch = d.queue.front().cls == RequestClass::kBatch;
    Instance* best = nullptr;
    auto rank = [](const Instance& i) {
      return std::tuple(i.retiring, i.in_flight, i.state == InstanceState::kSleeping);
    };
    // A sleeper whose accelerator has no room for it yet cannot be woken in this pass.
    std::vector<const Instance*> no_room;
    auto pick = [&] {
      best = nullptr;
      for (auto& i : d.instances) {
        if (i->unreachable || (i->state != InstanceState::kReady && i->state != InstanceState::kSleeping)) continue;
        if (std::find(no_room.begin(), no_room.end(), i.get()) != no_room.end()) continue;
        const int used = batch ? i->in_flight : i->in_flight - i->batch_in_flight;
        if (used < d.spec.slots && (!best || rank(*i) < rank(*best))) best = i.get();
      }
    };
    pick();
    while (best && !best->home_device.empty() && !move_back_to_device(d, *best, now, out)) {
      no_room.push_back(best);
      pick();
    }
    const bool woke = best && best->state == InstanceState::kSleeping;
    if (woke) {
      d.set_state(*best, InstanceState::kReady);
      ++d.wakes;
    }
    if (!best) return;
    const Waiter w = d.queue.front();
    d.queue.pop_front();
    --d.queued_by_class[class_index(w.cls)];
    queue_changed(d, false);
    ++d.in_flight_total;
    if (best->in_flight++ == 0) set_phase(*best, InstancePhase::kReady, 0, out);
    if (batch) ++best->batch_in_flight;
    Lease lease;
    lease.cls = w.cls;
    lease.deployment = d.spec.name;
    lease.instance_id = best->id;
    lease.instance = best->key;
    lease.queue_ms = (now - w.enqueued) * 1000;
    lease.woke = woke;
    if (w.cold) lease.cold_start_ms = lease.queue_ms;
    out.dispatches.push_back({w.tag, std::move(lease)});
  }
}

void FleetCore::release(InstanceKey key, RequestClass cls, bool failed, double now, FleetActions& out) {
  Instance* inst = nullptr;
  Deployment* d = find(key, &inst);
  if (!d) return;
  if (inst->in_flight > 0) {
    --inst->in_flight;
    --d->in_flight_total;
  }
  if (cls == RequestClass::kBatch) inst->batch_in_flight = std::max(0, inst->batch_in_flight - 1);
  if (inst->in_flight == inst->batch_in_flight) inst->interactive_idle_since = now;
  if (inst->in_flight == 0) {
    inst->idle_since = now;
    if (inst->state == InstanceState::kReady) set_phase(*inst, InstancePhase::kIdle, 0, out);
    if (inst->state == InstanceState::kDraining) out.signals.push_back({key, false});
  }
  if (failed && !inst->unreachable) {
    inst->unreachable = true;
    inst->last_health = kPast;  // probe at the next tick
  }
  if (!d->removed) dispatch(*d, now, out);
}

void FleetCore::observe_ttft(int dep, double seconds, double now) {
  auto& samples = deployments_[dep]->ttft_samples;
  samples.emplace_back(now, seconds);
  if (samples.size() > kTtftSamples) samples.pop_front();
}

void FleetCore::fail_waiters(Deployment& d, const AcquireFailure& failure, FleetActions& out,
                             const std::function<bool(const Waiter&)>& which) {
  const bool was_empty = d.queue.empty();
  for (auto it = d.queue.begin(); it != d.queue.end();) {
    if (!which(*it)) {
      ++it;
      continue;
    }
    out.failures.push_back({it->tag, failure});
    --d.queued_by_class[class_index(it->cls)];
    it = d.queue.erase(it);
  }
  queue_changed(d, was_empty);
}

void FleetCore::fail_waiting(RequestClass cls, const AcquireFailure& failure, FleetActions& out) {
  for (auto& d : deployments_) fail_waiters(*d, failure, out, [&](const Waiter& w) { return w.cls == cls; });
}

// ---------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------

FleetCore::Deployment* FleetCore::find(InstanceKey key, Instance** inst) {
  auto it = owner_.find(key);
  if (it == owner_.end()) return nullptr;
  Deployment& d = *deployments_[it->second];
  for (auto& i : d.instances)
    if (i->key == key) {
      *inst = i.get();
      return &d;
    }
  return nullptr;
}

std::string FleetCore::instance_id(InstanceKey key) const {
  auto it = owner_.find(key);
  if (it == owner_.end()) return "";
  for (const auto& i : deployments_[it->second]->instances)
    if (i->key == key) return i->id;
  return "";
}

void FleetCore::set_phase(Instance& inst, InstancePhase phase, double start_s, FleetActions& out) {
  if (inst.phase == phase && inst.reported_ready) return;
  inst.phase = phase;
  if (options_.phases) out.phases.push_back({inst.key, inst.id, phase, start_s});
}

void FleetCore::instance_ready(InstanceKey key, double now, FleetActions& out) {
  Instance* i = nullptr;
  Deployment* d = find(key, &i);
  if (!d || i->state != InstanceState::kStarting) return;
  d->set_state(*i, InstanceState::kReady);
  i->idle_since = i->interactive_idle_since = i->idle_since_at_ready >= 0 ? i->idle_since_at_ready : now;
  i->last_health = now;
  d->consecutive_failures = 0;
  if (options_.explain)
    out.notes.push_back(i->id + " ready after " + std::to_string(static_cast<int>((now - i->started) * 1000)) + " ms");
  set_phase(*i, i->in_flight > 0 ? InstancePhase::kReady : InstancePhase::kIdle, now - i->started, out);
  i->reported_ready = true;
  dispatch(*d, now, out);
}

void FleetCore::crashed(Deployment& d, double now) {
  ++d.crashes;
  ++d.consecutive_failures;
  d.next_start_allowed = now + backoff_s(d.consecutive_failures);
}

void FleetCore::remove_instance(Deployment& d, InstanceKey key) {
  for (auto it = d.instances.begin(); it != d.instances.end(); ++it)
    if ((*it)->key == key) {
      placement_.release((*it)->id);
      d.forget(**it);
      d.instances.erase(it);
      break;
    }
  owner_.erase(key);
}

void FleetCore::instance_exited(InstanceKey key, int status, double now, FleetActions& out) {
  Instance* i = nullptr;
  Deployment* d = find(key, &i);
  if (!d) return;
  if (i->state != InstanceState::kDraining) {
    crashed(*d, now);
    const bool starting = i->state == InstanceState::kStarting;
    out.errors.push_back(i->id + " exited unexpectedly with status " + std::to_string(status) +
                         (starting ? " while starting" : ""));
    if (starting && d->consecutive_failures >= 3)
      fail_waiters(*d,
                   {core::Status::unavailable("instances of '" + d->spec.name +
                                              "' fail to start (last exit status " + std::to_string(status) + ")"),
                    1},
                   out, [](const Waiter&) { return true; });
  }
  remove_instance(*d, key);
}

void FleetCore::start_failed(InstanceKey key, const std::string& why, double now, FleetActions& out) {
  Instance* i = nullptr;
  Deployment* d = find(key, &i);
  if (!d) return;
  out.errors.push_back("cannot start an instance of '" + d->spec.name + "': " + why);
  ++d->consecutive_failures;
  d->next_start_allowed = now + backoff_s(d->consecutive_failures);
  if (d->consecutive_failures >= 3)
    fail_waiters(*d, {core::Status::unavailable("cannot start '" + d->spec.name + "': " + why), 1}, out,
                 [](const Waiter&) { return true; });
  remove_instance(*d, key);
}

void FleetCore::probe_result(InstanceKey key, bool ok, double now, FleetActions& out) {
  Instance* i = nullptr;
  Deployment* d = find(key, &i);
  if (!d) return;
  i->probing = false;
  if (i->state == InstanceState::kStarting) {
    if (ok) instance_ready(key, now, out);
    return;
  }
  if (i->state != InstanceState::kReady && i->state != InstanceState::kSleeping) return;
  i->last_health = now;
  if (!ok && ++i->failed_probes < kProbeFailuresToRestart) {
    // A worker busy with a large request may miss one probe's deadline: probe again soon, and
    // restart it only when it stays silent.
    out.errors.push_back(i->id + " failed a health check (" + std::to_string(i->failed_probes) + " of " +
                         std::to_string(kProbeFailuresToRestart) + " in a row before it is restarted)");
    i->last_health = now - options_.health_check_s + std::min(kProbeRetryS, options_.health_check_s);
    return;
  }
  if (ok) i->failed_probes = 0;
  if (!ok) {
    out.errors.push_back(i->id + " failed " + std::to_string(kProbeFailuresToRestart) +
                         " health checks in a row: restarting it");
    ++d->crashes;
    d->set_state(*i, InstanceState::kDraining);
    i->drain_started = now;
    set_phase(*i, InstancePhase::kDraining, 0, out);
    out.signals.push_back({key, true});
  } else if (i->unreachable) {
    i->unreachable = false;
    dispatch(*d, now, out);
  }
}

void FleetCore::sleep_result(InstanceKey key, const core::Status& result, double now, FleetActions& out) {
  Instance* i = nullptr;
  Deployment* d = find(key, &i);
  if (!d) return;
  if (result) {
    if (i->state == InstanceState::kSleeping) move_to_host(*i, out);
    return;
  }
  if (!result.is_failed_precondition()) {
    i->cannot_sleep = true;
    out.errors.push_back(i->id + " cannot sleep (" + result.message() + "): it stays awake while idle");
  }
  if (i->state != InstanceState::kSleeping) return;  // already woken by a request
  d->set_state(*i, InstanceState::kReady);
  set_phase(*i, i->in_flight > 0 ? InstancePhase::kReady : InstancePhase::kIdle, 0, out);
  i->idle_since = i->interactive_idle_since = now;  // idle afresh before the next try
  dispatch(*d, now, out);
}

// Idle awake instances that have been idle for `sleep_after_s` go to sleep.
void FleetCore::put_to_sleep(Deployment& d, double sleep_after_s, double now, FleetActions& out) {
  for (auto& ip : d.instances) {
    Instance& i = *ip;
    if (i.state != InstanceState::kReady || i.in_flight > 0 || i.unreachable || i.cannot_sleep ||
        now - i.idle_since < sleep_after_s)
      continue;
    if (options_.explain)
      out.notes.push_back(i.id + " goes to sleep after " + std::to_string(static_cast<int>(now - i.idle_since)) +
                          " s idle");
    d.set_state(i, InstanceState::kSleeping);
    set_phase(i, InstancePhase::kSleeping, 0, out);
    out.sleeps.push_back({i.key});
  }
}

// A confirmed sleeper on an accelerator is counted on the host instead (when it fits there).
void FleetCore::move_to_host(Instance& inst, FleetActions& out) {
  const std::string device = placement_.device_of(inst.id);
  if (!inst.home_device.empty() || host_device_.empty() || device.empty() || placement_.kind(device) == "cpu") return;
  if (!placement_.move(inst.id, host_device_)) return;
  inst.home_device = device;
  if (options_.explain)
    out.notes.push_back(inst.id + " sleeps with its memory on " + host_device_ + ", " + device + " is free for others");
}

// The memory of a sleeper on the host goes back to its accelerator before it wakes; when it
// does not fit, idle instances there are evicted (their memory frees when they exit) and
// false is returned.
bool FleetCore::move_back_to_device(Deployment& d, Instance& inst, double now, FleetActions& out) {
  if (placement_.move(inst.id, inst.home_device)) {
    inst.home_device.clear();
    return true;
  }
  Evaluation ignored;
  make_room(d, inst.home_device, now, out, ignored);
  return false;
}

void FleetCore::drain(Deployment& d, Instance& inst, const std::string& why, double now, FleetActions& out) {
  if (options_.explain) out.notes.push_back("stopping " + inst.id + ": " + why);
  d.set_state(inst, InstanceState::kDraining);
  inst.drain_started = now;
  set_phase(inst, InstancePhase::kDraining, 0, out);
  if (inst.in_flight == 0) out.signals.push_back({inst.key, false});
}

void FleetCore::instance_retiring(InstanceKey key, double now, FleetActions& out) {
  Instance* i = nullptr;
  Deployment* d = find(key, &i);
  if (!d || i->retiring || i->state == InstanceState::kDraining) return;
  i->retiring = true;
  out.notes.push_back(i->id + " will end by itself soon (its runtime's time limit): replacing it");
  if (i->state != InstanceState::kStarting) replace(*d, *i, now, out);
}

// A retiring instance: drained once another instance of its deployment is ready (true: it
// drains now), else a replacement is started (again if the last one failed). Until then it
// serves as before.
bool FleetCore::replace(Deployment& d, Instance& i, double now, FleetActions& out) {
  bool replaced = false, replacing = false;
  for (const auto& o : d.instances) {
    if (o.get() == &i || o->retiring) continue;
    if ((o->state == InstanceState::kReady || o->state == InstanceState::kSleeping) && !o->unreachable) replaced = true;
    if (o->key == i.replacement && o->state == InstanceState::kStarting) replacing = true;
  }
  if (replaced) {
    drain(d, i, "replaced before it ends by itself", now, out);
    return true;
  }
  if (replacing || d.removed || now < d.next_start_allowed) return false;
  Evaluation e;
  const size_t before = d.instances.size();
  start_instances(d, 1, false, false, now, out, e);
  if (d.instances.size() == before) return false;  // no room yet: tried again on the next tick
  Instance& r = *d.instances.back();
  i.replacement = r.key;
  r.idle_since_at_ready = i.in_flight > i.batch_in_flight ? -1 : i.interactive_idle_since;
  if (options_.explain) decision(d, "prewarm", "replacing " + i.id + " before it ends by itself", "", out);
  return false;
}

// Start timeouts, probes due, and draining instances: asked again to stop, killed after the
// grace period.
void FleetCore::lifecycle(Deployment& d, double now, FleetActions& out) {
  // By index: replace() may start an instance (appended to d.instances).
  for (size_t k = 0; k < d.instances.size(); ++k) {
    Instance& i = *d.instances[k];
    switch (i.state) {
      case InstanceState::kStarting:
        if (now - i.started > d.spec.start_timeout_s) {
          out.errors.push_back(i.id + " did not become ready within " +
                               std::to_string(static_cast<int>(d.spec.start_timeout_s)) + " s");
          ++d.consecutive_failures;
          d.set_state(i, InstanceState::kDraining);
          i.drain_started = now;
          out.signals.push_back({i.key, true});
          if (d.consecutive_failures >= 3)
            fail_waiters(d,
                         {core::Status::unavailable("instances of '" + d.spec.name + "' do not become ready in time"),
                          1},
                         out, [](const Waiter&) { return true; });
        } else if (!d.spec.announces_ready && !i.probing) {
          i.probing = true;
          out.probes.push_back({i.key, true});
        }
        break;
      case InstanceState::kReady:
      case InstanceState::kSleeping:
        if (i.retiring && replace(d, i, now, out)) break;
        if (options_.health_check_s > 0 && !i.probing && now - i.last_health > options_.health_check_s) {
          i.probing = true;
          out.probes.push_back({i.key, false});
        }
        break;
      case InstanceState::kDraining:
        if (now - i.drain_started > options_.drain_grace_s) out.signals.push_back({i.key, true});
        else if (i.in_flight == 0) out.signals.push_back({i.key, false});
        break;
    }
  }
}

// Reserves the deployment's memory on its device for a new instance. When it does not fit,
// stops idle instances of deployments of no higher priority (above their min_instances, with
// nothing waiting) to make room; their memory frees when they exit, so the start happens at a
// later evaluation.
bool FleetCore::reserve_or_make_room(Deployment& d, const std::string& instance_id, double now, FleetActions& out,
                                     Evaluation& e) {
  if (placement_.reserve(instance_id, d.spec.device, d.spec.memory_bytes)) return true;
  make_room(d, d.spec.device, now, out, e);
  return false;
}

// Stops idle instances on `device` of deployments of no higher priority than `d` (above their
// min_instances, with nothing waiting; sleeping ones first) so that d's memory will fit there.
void FleetCore::make_room(Deployment& d, const std::string& device, double now, FleetActions& out, Evaluation& e) {
  std::unordered_map<std::string, std::pair<Deployment*, Instance*>> owners;
  for (auto& o : deployments_)
    for (auto& i : o->instances)
      if (placement_.device_of(i->id) == device) owners[i->id] = {o.get(), i.get()};
  auto is_idle = [&](const std::string& id) {
    auto it = owners.find(id);
    if (it == owners.end()) return false;
    auto [o, i] = it->second;
    if (o == &d || o->spec.priority > d.spec.priority || !o->queue.empty()) return false;
    if (o->count(InstanceState::kReady) + o->count(InstanceState::kSleeping) + o->count(InstanceState::kStarting) <=
        o->spec.min_instances)
      return false;
    return (i->state == InstanceState::kReady || i->state == InstanceState::kSleeping) && i->in_flight == 0;
  };
  // Sleeping instances go first, then idle awake ones.
  auto rank = [&](const std::string& id) {
    if (!is_idle(id)) return 0;
    return owners[id].second->state == InstanceState::kSleeping ? 1 : 2;
  };
  const auto victims = placement_.eviction_candidates(device, d.spec.memory_bytes, rank);
  for (const auto& id : victims) {
    auto [o, i] = owners[id];
    if (options_.explain)
      decision(*o, "evict", "making room for '" + d.spec.name + "' on " + device,
               "needed_bytes=" + std::to_string(d.spec.memory_bytes) +
                   " used_bytes=" + std::to_string(placement_.used(device)) +
                   " capacity_bytes=" + std::to_string(placement_.capacity(device)),
               out);
    drain(*o, *i, "making room for '" + d.spec.name + "'", now, out);
    e.evicted = true;
  }
}

void FleetCore::start_instances(Deployment& d, int n, bool for_request, bool may_evict, double now,
                                FleetActions& out, Evaluation& e) {
  for (int k = 0; k < n; ++k) {
    std::string id = d.spec.name + "-" + std::to_string(next_instance_);
    const bool fits = may_evict ? reserve_or_make_room(d, id, now, out, e)
                                : static_cast<bool>(placement_.reserve(id, d.spec.device, d.spec.memory_bytes));
    if (!fits) {
      e.blocked = true;
      return;
    }
    auto inst = std::make_unique<Instance>();
    inst->key = next_instance_++;
    inst->id = std::move(id);
    inst->started = inst->idle_since = inst->interactive_idle_since = inst->last_health = now;
    if (for_request) ++d.cold_starts;
    owner_[inst->key] = d.index;
    d.add(*inst);
    out.starts.push_back({inst->key, inst->id, d.index, for_request});
    d.instances.push_back(std::move(inst));
    e.acted = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

void FleetCore::tick(double now, FleetActions& out) {
  for (auto& d : deployments_) evaluate(d->index, now, out);  // a removed one only drains
}

void FleetCore::decision(const Deployment& d, const std::string& action, const std::string& reason,
                         const std::string& inputs, FleetActions& out) const {
  out.decisions.push_back({d.spec.name, d.spec.policy, action, reason, inputs});
}

FleetCore::Evaluation FleetCore::evaluate(int dep, double now, FleetActions& out) {
  Evaluation e;
  Deployment& d = *deployments_[dep];
  lifecycle(d, now, out);
  if (d.removed) return e;
  const DeploymentSpec& spec = d.spec;
  // Requests that waited too long (batch ones sit behind interactive ones: check them all).
  auto timed_out = [&](const Waiter& w) { return now - w.enqueued > spec.request_timeout_s; };
  if (std::any_of(d.queue.begin(), d.queue.end(), timed_out))
    fail_waiters(d,
                 {core::Status::deadline_exceeded("no instance of '" + spec.name + "' could take the request within " +
                                                  std::to_string(static_cast<int>(spec.request_timeout_s)) +
                                                  " s (request_timeout)"),
                  5},
                 out, timed_out);
  dispatch(d, now, out);

  // The policy sees interactive demand only; batch demand may add up to batch_max_instances.
  const int batch_queued = d.queued(RequestClass::kBatch);
  const int batch_in_flight = d.batch_in_flight();
  DeploymentObservation& o = d.obs;
  o.now_s = now + options_.wall_clock_offset_s;
  o.ttft_objective_s = spec.ttft_objective_s;
  o.ttft_p95_s = spec.ttft_objective_s > 0 ? d.ttft_p95(now) : 0;
  o.min_instances = std::max(spec.min_instances, now < d.prewarm_until ? 1 : 0);
  o.max_instances = spec.max_instances;
  o.slots = spec.slots;
  o.keep_alive_s = spec.keep_alive_s;
  o.sleep_after_s = spec.sleep_after_s;
  o.sleep_cost_share = spec.sleep_after_s >= 0 && spec.price_per_second > 0
                           ? spec.sleep_price_per_second / spec.price_per_second
                           : 1.0;
  o.queued = d.queued(RequestClass::kInteractive);
  o.in_flight = d.in_flight() - batch_in_flight;
  o.arrivals = d.arrivals;
  d.arrivals = 0;
  size_t n = 0;
  for (const auto& i : d.instances) {
    if (i->state == InstanceState::kDraining || i->retiring) continue;
    if (o.instances.size() <= n) o.instances.emplace_back();
    auto& io = o.instances[n++];
    const int interactive = i->in_flight - i->batch_in_flight;
    if (io.id != i->id) io.id = i->id;
    io.asleep = i->state == InstanceState::kSleeping;
    io.ready = i->state == InstanceState::kReady || io.asleep;
    io.in_flight = interactive;
    io.idle_for_s = interactive == 0 && io.ready ? now - i->interactive_idle_since : 0.0;
  }
  o.instances.resize(n);
  const int live = static_cast<int>(n);
  const int batch_want = std::min(spec.batch_max_instances, (batch_queued + batch_in_flight + spec.slots - 1) / spec.slots);
  // What the decision saw, for its log line; formatted only when one is logged.
  auto inputs = [&] {
    if (!options_.explain) return std::string();
    char text[256];
    std::snprintf(text, sizeof text,
                  "live=%d in_flight=%d queued=%d batch_in_flight=%d batch_queued=%d min=%d max=%d ttft_p95_s=%.3f",
                  live, o.in_flight, o.queued, batch_in_flight, batch_queued, o.min_instances, o.max_instances,
                  spec.ttft_objective_s > 0 ? o.ttft_p95_s : d.ttft_p95(now));
    return std::string(text);
  };
  ScalingDecision sd = d.policy->decide(o);
  if (sd.revisit_at_s > 0) e.revisit_at = sd.revisit_at_s - options_.wall_clock_offset_s;
  if (!sd.reason.empty() && options_.explain)
    decision(d, "policy", sd.reason, "desired=" + std::to_string(sd.desired) + " " + inputs(), out);

  // An instance that batch work keeps busy may still go once interactive demand left it, as
  // long as the batch allowance is kept.
  int keep_for_batch = batch_want;
  for (const auto& id : sd.stop)
    for (auto& i : d.instances) {
      if (i->id != id || (i->state != InstanceState::kReady && i->state != InstanceState::kSleeping) ||
          i->in_flight > i->batch_in_flight)
        continue;
      if (i->batch_in_flight > 0 && keep_for_batch-- > 0) continue;
      const std::string why = i->batch_in_flight > 0 ? "no interactive demand; its batch work drains"
                              : sd.reason.empty()    ? "idle past keep-alive"
                                                     : sd.reason;
      if (options_.explain) decision(d, "scale_in", why, inputs(), out);
      drain(d, *i, why, now, out);
      e.acted = true;
    }

  if (spec.sleep_after_s >= 0) put_to_sleep(d, sd.sleep_after_s >= 0 ? sd.sleep_after_s : spec.sleep_after_s, now, out);

  const int desired = std::max({std::min(sd.desired, std::max(spec.max_instances, o.min_instances)),
                                o.min_instances, batch_want});
  if (live < desired && now >= d.next_start_allowed) {
    const uint64_t capacity = placement_.capacity(spec.device);
    if (capacity > 0 && spec.memory_bytes > capacity) {
      fail_waiters(d,
                   {core::Status::insufficient_memory("deployment '" + spec.name + "' needs " +
                                                      gib(spec.memory_bytes) + " but device " + spec.device + " has " +
                                                      gib(capacity) + " in all"),
                    1},
                   out, [](const Waiter&) { return true; });
    } else {
      // Capacity the policy wants without a request waiting for it (its windows still remember
      // load) must not take memory from a deployment that has requests waiting, or two
      // deployments sharing a device would evict each other in turn.
      const bool batch_needs = batch_queued > 0 && live < spec.batch_max_instances;
      const bool for_request = o.queued > 0 || batch_needs;
      const bool needed = for_request || live < o.min_instances;
      auto contended = [&] {
        auto it = waiting_on_device_.find(spec.device);
        return it != waiting_on_device_.end() && it->second > 0;
      };
      if (needed || !contended()) {
        const size_t before = d.instances.size();
        start_instances(d, desired - live, for_request, needed, now, out, e);
        if (d.instances.size() > before && options_.explain) {
          const std::string reason = o.queued > 0 ? "interactive requests waiting"
                                     : batch_needs ? "batch requests waiting (batch_max_instances " +
                                                         std::to_string(spec.batch_max_instances) + ")"
                                     : now < d.prewarm_until ? "admin pre-warm"
                                     : live < spec.min_instances ? "below min_instances"
                                                                 : sd.reason;
          // One decision per instance started, so that the decision metric counts instances.
          const std::string why = reason.empty() ? "policy" : reason, seen = inputs();
          for (size_t k = before; k < d.instances.size(); ++k)
            decision(d, for_request ? "scale_out" : "prewarm", why, seen, out);
        }
      } else {
        e.blocked = true;
      }
    }
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

core::Status FleetCore::scale(const std::string& name, int n) {
  const int dep = deployment_index(name);
  if (dep < 0) return core::Status::not_found("unknown deployment '" + name + "'");
  Deployment& d = *deployments_[dep];
  if (n < 0 || n > d.spec.max_instances)
    return core::Status::invalid_argument("instances must be between 0 and max_instances (" +
                               std::to_string(d.spec.max_instances) + ")");
  d.spec.min_instances = n;
  return core::Status::ok();
}

core::Status FleetCore::prewarm(const std::string& name, double now) {
  const int dep = deployment_index(name);
  if (dep < 0) return core::Status::not_found("unknown deployment '" + name + "'");
  Deployment& d = *deployments_[dep];
  const double hold_s = d.spec.keep_alive_s < 0 ? 86400.0 * 365 : std::max(60.0, d.spec.keep_alive_s);
  d.prewarm_until = now + hold_s;
  return core::Status::ok();
}

std::vector<InstanceKey> FleetCore::shutdown(const AcquireFailure& failure, FleetActions& out) {
  std::vector<InstanceKey> all;
  for (auto& d : deployments_) {
    fail_waiters(*d, failure, out, [](const Waiter&) { return true; });
    for (auto& i : d->instances) {
      all.push_back(i->key);
      placement_.release(i->id);
    }
    d->instances.clear();
    std::fill(std::begin(d->by_state), std::end(d->by_state), 0);
    d->in_flight_total = 0;
  }
  owner_.clear();
  return all;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

std::vector<DeploymentStatus> FleetCore::status(double now) const {
  std::vector<DeploymentStatus> out;
  for (const auto& d : deployments_) {
    if (d->removed) continue;
    DeploymentStatus s;
    s.name = d->spec.name;
    s.instances_ready = d->count(InstanceState::kReady);
    s.instances_starting = d->count(InstanceState::kStarting);
    s.instances_draining = d->count(InstanceState::kDraining);
    s.instances_sleeping = d->count(InstanceState::kSleeping);
    s.queued = static_cast<int>(d->queue.size());
    s.in_flight = d->in_flight();
    s.batch_queued = d->queued(RequestClass::kBatch);
    s.batch_in_flight = d->batch_in_flight();
    for (const auto& i : d->instances)
      if (i->state == InstanceState::kStarting) s.starting_for_s = std::max(s.starting_for_s, now - i->started);
    s.min_instances = d->spec.min_instances;
    s.max_instances = d->spec.max_instances;
    s.keep_alive_s = d->spec.keep_alive_s;
    for (const auto& i : d->instances)
      s.instances.push_back({i->id, instance_phase_name(i->phase), now - i->started,
                             i->phase == InstancePhase::kIdle ? now - i->idle_since : 0});
    s.cold_starts = d->cold_starts;
    s.wakes = d->wakes;
    s.crashes = d->crashes;
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<DeviceMemory> FleetCore::device_memory() const {
  std::vector<DeviceMemory> out;
  for (const DeviceConfig& dev : options_.devices)
    out.push_back({dev.name, placement_.used(dev.name), placement_.capacity(dev.name)});
  return out;
}

std::vector<std::tuple<std::string, std::string, std::string>> FleetCore::policy_states() const {
  std::vector<std::tuple<std::string, std::string, std::string>> states;
  for (const auto& d : deployments_) {
    if (d->removed) continue;
    std::string state = d->policy->save_state();
    if (!state.empty()) states.emplace_back(d->spec.name, d->spec.policy, std::move(state));
  }
  return states;
}

int FleetCore::live(int dep) const {
  const auto& d = *deployments_[dep];
  return d.count(InstanceState::kStarting) + d.count(InstanceState::kReady) + d.count(InstanceState::kSleeping);
}
int FleetCore::ready(int dep) const { return deployments_[dep]->count(InstanceState::kReady); }
int FleetCore::sleeping(int dep) const { return deployments_[dep]->count(InstanceState::kSleeping); }
int FleetCore::queued(int dep) const { return static_cast<int>(deployments_[dep]->queue.size()); }
int FleetCore::in_flight(int dep) const { return deployments_[dep]->in_flight(); }
int FleetCore::arrivals_pending(int dep) const { return deployments_[dep]->arrivals; }

double FleetCore::next_idle_expiry(int dep) const {
  const auto& d = *deployments_[dep];
  if (d.spec.keep_alive_s < 0) return kNever;
  double t = kNever;
  for (const auto& i : d.instances)
    if ((i->state == InstanceState::kReady || i->state == InstanceState::kSleeping) && i->in_flight == 0)
      t = std::min(t, i->interactive_idle_since + d.spec.keep_alive_s);
  return t;
}

double FleetCore::next_sleep(int dep) const {
  const auto& d = *deployments_[dep];
  if (d.spec.sleep_after_s < 0) return kNever;
  double t = kNever;
  for (const auto& i : d.instances)
    if (i->state == InstanceState::kReady && i->in_flight == 0 && !i->unreachable && !i->cannot_sleep)
      t = std::min(t, i->idle_since + d.spec.sleep_after_s);
  return t;
}

}  // namespace zs::platform
