#include "platform/fleet/fleet.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <tuple>

#include "core/log.h"

namespace zs::platform {

using Clock = std::chrono::steady_clock;

namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A free loopback port for a command runtime (bound and released: the instance binds it next).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  return buf;
}

constexpr auto kTick = std::chrono::milliseconds(20);
constexpr double kHeartbeatS = 5;
constexpr double kHealthCheckS = 5;
constexpr double kDrainGraceS = 30;

}  // namespace

std::string DeploymentStatus::state() const {
  if (instances_ready > 0) return "ready";
  if (instances_starting > 0) return "starting";
  return "idle";
}

struct Fleet::Instance {
  enum class State { kStarting, kReady, kDraining };
  std::string id;
  State state = State::kStarting;
  std::unique_ptr<Process> process;
  std::string address;
  Clock::time_point started = Clock::now();
  Clock::time_point idle_since = Clock::now();
  Clock::time_point last_health = Clock::now();
  Clock::time_point drain_started;
  int in_flight = 0;        // both classes
  int batch_in_flight = 0;  // of which batch requests
  // A request to it failed (e.g. connection refused): no new requests go to it until the
  // control thread has seen it exit or pass a health check.
  bool unreachable = false;
  // Since the last interactive request finished: batch work alone does not keep an instance
  // beyond what batch_max_instances allows.
  Clock::time_point interactive_idle_since = Clock::now();
  bool reported_ready = false;
  InstancePhase phase = InstancePhase::kStarting;
};

struct Fleet::Waiter {
  uint64_t ticket;
  RequestClass cls;
  int order;
  Clock::time_point enqueued = Clock::now();
  bool cold = false;  // no instance was ready when it arrived
  Done done;
};

struct Fleet::Deployment {
  DeploymentSpec spec;
  std::vector<std::unique_ptr<Instance>> instances;
  std::deque<Waiter> queue;
  int consecutive_failures = 0;
  Clock::time_point next_start_allowed = Clock::now();
  uint64_t cold_starts = 0;
  uint64_t crashes = 0;
  bool removed = false;
  // Admin pre-warm: hold at least one instance until then (the keep-alive after it).
  Clock::time_point prewarm_until{};
  int arrivals = 0;  // since the policy's last observation
  std::unique_ptr<ScalingPolicy> policy;
  std::deque<std::pair<Clock::time_point, double>> ttft_samples;  // the last minute's

  int count(Instance::State s) const {
    return static_cast<int>(
        std::count_if(instances.begin(), instances.end(), [&](const auto& i) { return i->state == s; }));
  }
  int in_flight() const {
    int n = 0;
    for (const auto& i : instances) n += i->in_flight;
    return n;
  }
  int batch_in_flight() const {
    int n = 0;
    for (const auto& i : instances) n += i->batch_in_flight;
    return n;
  }
  int queued(RequestClass c) const {
    return static_cast<int>(std::count_if(queue.begin(), queue.end(), [&](const Waiter& w) { return w.cls == c; }));
  }
  double ttft_p95() const {
    if (ttft_samples.empty()) return 0;
    std::vector<double> v;
    for (const auto& [t, s] : ttft_samples) v.push_back(s);
    const size_t k = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(v.size()))) - 1;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  }
};

Fleet::Fleet(std::vector<DeviceConfig> devices, std::string run_dir, Probe probe, FleetEvents events)
    : placement_(std::move(devices)),
      run_dir_(std::move(run_dir)),
      probe_(std::move(probe)),
      events_(std::move(events)) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir_, ec);
  last_heartbeat_ = Clock::now();
  last_policy_save_ = Clock::now();
  thread_ = std::thread([this] { loop(); });
}

Fleet::~Fleet() { shutdown(std::chrono::milliseconds(5000)); }

void Fleet::set_deployments(std::vector<DeploymentSpec> specs) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, bool> keep;
    for (auto& spec : specs) {
      keep[spec.name] = true;
      auto it = deployments_.find(spec.name);
      auto policy = make_scaling_policy(spec.policy, spec.policy_options);
      if (!policy) {  // the config layer validates names; keep serving with the default
        core::log_error("fleet", policy.status().message());
        policy = make_scaling_policy("concurrency", spec.policy_options);
      }
      if (events_.load_policy_state) {
        if (auto state = events_.load_policy_state(spec.name, spec.policy)) {
          core::Status st = policy.value()->restore_state(*state);
          if (!st) core::log_warn("autoscale", spec.name + ": ignoring saved policy state: " + st.message());
        }
      }
      if (it == deployments_.end()) {
        auto d = std::make_unique<Deployment>();
        d->spec = std::move(spec);
        d->policy = std::move(policy.value());
        deployments_[d->spec.name] = std::move(d);
        continue;
      }
      Deployment& d = *it->second;
      const bool replace = d.spec.fingerprint != spec.fingerprint;
      d.spec = std::move(spec);
      d.policy = std::move(policy.value());
      if (replace)
        for (auto& inst : d.instances)
          if (inst->state != Instance::State::kDraining) stop_instance(d, *inst, "configuration changed");
    }
    for (auto it = deployments_.begin(); it != deployments_.end();) {
      if (keep.count(it->first)) {
        ++it;
        continue;
      }
      Deployment& d = *it->second;
      d.removed = true;
      fail_all(d, AcquireError::kUnknownDeployment, "deployment '" + d.spec.name + "' was removed");
      for (auto& inst : d.instances)
        if (inst->state != Instance::State::kDraining) stop_instance(d, *inst, "deployment removed");
      retired_.push_back(std::move(it->second));
      it = deployments_.erase(it);
    }
  }
  wake_.notify_all();
  run_pending();
}

bool Fleet::has_deployment(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return deployments_.count(name) > 0;
}

std::vector<std::string> Fleet::deployment_names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [n, d] : deployments_) names.push_back(n);
  return names;
}

uint64_t Fleet::acquire(const std::string& name, RequestClass cls, Done done, int order) {
  std::optional<AcquireFailure> failure;
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = deployments_.find(name);
    if (stop_) {
      failure = AcquireFailure{AcquireError::kShuttingDown, "the server is shutting down", 5};
    } else if (it == deployments_.end()) {
      failure = AcquireFailure{AcquireError::kUnknownDeployment, "unknown deployment '" + name + "'", 0};
    } else if (const int waiting = it->second->queued(cls); waiting >= it->second->spec.max_queue) {
      failure = AcquireFailure{AcquireError::kQueueFull,
                               "deployment '" + name + "' has " + std::to_string(waiting) + " " +
                                   std::string(request_class_name(cls)) +
                                   " requests waiting (its max_queue); retry later",
                               2};
    } else {
      Deployment& d = *it->second;
      ticket = next_ticket_++;
      if (cls == RequestClass::kInteractive) ++d.arrivals;
      Waiter w{ticket, cls, order, Clock::now(), d.count(Instance::State::kReady) == 0, std::move(done)};
      // Interactive before batch, then higher order, then arrival order.
      auto key = [](const Waiter& x) { return std::make_pair(x.cls == RequestClass::kInteractive ? 1 : 0, x.order); };
      auto pos = std::find_if(d.queue.begin(), d.queue.end(), [&](const Waiter& o) { return key(o) < key(w); });
      d.queue.insert(pos, std::move(w));
      dispatch(d);
    }
  }
  wake_.notify_all();
  if (failure) done(nullptr, &*failure);
  run_pending();
  return ticket;
}

void Fleet::run_pending() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    callbacks.swap(pending_callbacks_);
  }
  for (auto& c : callbacks) c();
}

void Fleet::cancel(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [n, d] : deployments_)
    d->queue.erase(
        std::remove_if(d->queue.begin(), d->queue.end(), [&](const Waiter& w) { return w.ticket == ticket; }),
        d->queue.end());
}

void Fleet::release(const Lease& lease, bool instance_failed) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto find_in = [&](Deployment& d) {
      for (auto& inst : d.instances)
        if (inst->id == lease.instance_id) {
          inst->in_flight = std::max(0, inst->in_flight - 1);
          if (lease.cls == RequestClass::kBatch) inst->batch_in_flight = std::max(0, inst->batch_in_flight - 1);
          if (inst->in_flight == inst->batch_in_flight) inst->interactive_idle_since = Clock::now();
          if (inst->in_flight == 0) {
            inst->idle_since = Clock::now();
            if (inst->state == Instance::State::kReady) set_phase(*inst, InstancePhase::kIdle);
          }
          if (instance_failed) {
            inst->unreachable = true;
            inst->last_health = Clock::now() - std::chrono::hours(1);  // probe at once
          }
          return true;
        }
      return false;
    };
    auto it = deployments_.find(lease.deployment);
    if (it != deployments_.end() && find_in(*it->second)) {
      dispatch(*it->second);
    } else {
      for (auto& d : retired_)
        if (find_in(*d)) break;
    }
  }
  wake_.notify_all();
  run_pending();
}

void Fleet::fail_waiting(RequestClass cls, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [name, d] : deployments_)
      fail_waiters(*d, {AcquireError::kShuttingDown, message, 5}, [&](const Waiter& w) { return w.cls == cls; });
  }
  run_pending();
}

std::vector<DeploymentStatus> Fleet::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<DeploymentStatus> out;
  const auto now = Clock::now();
  for (const auto& [name, d] : deployments_) {
    DeploymentStatus s;
    s.name = name;
    s.instances_ready = d->count(Instance::State::kReady);
    s.instances_starting = d->count(Instance::State::kStarting);
    s.instances_draining = d->count(Instance::State::kDraining);
    s.queued = static_cast<int>(d->queue.size());
    s.in_flight = d->in_flight();
    s.batch_queued = d->queued(RequestClass::kBatch);
    s.batch_in_flight = d->batch_in_flight();
    for (const auto& i : d->instances)
      if (i->state == Instance::State::kStarting)
        s.starting_for_s = std::max(s.starting_for_s, seconds_between(i->started, now));
    s.cold_starts = d->cold_starts;
    s.crashes = d->crashes;
    out.push_back(s);
  }
  return out;
}

void Fleet::save_policy_states() {
  if (!events_.save_policy_state) return;
  std::vector<std::tuple<std::string, std::string, std::string>> states;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, d] : deployments_) {
      std::string state = d->policy->save_state();
      if (!state.empty()) states.emplace_back(name, d->spec.policy, std::move(state));
    }
  }
  for (const auto& [name, policy, state] : states) events_.save_policy_state(name, policy, state);
}

void Fleet::shutdown(std::chrono::milliseconds grace) {
  save_policy_states();
  std::vector<std::unique_ptr<Instance>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return;
    stop_ = true;
    for (auto& [n, d] : deployments_) {
      fail_all(*d, AcquireError::kShuttingDown, "the server is shutting down");
      for (auto& i : d->instances) all.push_back(std::move(i));
      d->instances.clear();
    }
    for (auto& d : retired_)
      for (auto& i : d->instances) all.push_back(std::move(i));
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& c : pending_callbacks_) c();
  pending_callbacks_.clear();
  // SIGTERM to all at once, so that they drain in parallel.
  for (auto& i : all)
    if (i->process) i->process->signal(SIGTERM);
  const auto deadline = Clock::now() + grace;
  for (auto& i : all) {
    if (!i->process) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    i->process->terminate(std::max(left, std::chrono::milliseconds(0)));
    if (events_.instance_stopped) events_.instance_stopped(i->id);
  }
}

void Fleet::fail_all(Deployment& d, AcquireError e, const std::string& message) {
  fail_waiters(d, {e, message, 1}, [](const Waiter&) { return true; });
}

void Fleet::fail_waiters(Deployment& d, const AcquireFailure& failure, const std::function<bool(const Waiter&)>& which) {
  for (auto it = d.queue.begin(); it != d.queue.end();) {
    if (!which(*it)) {
      ++it;
      continue;
    }
    pending_callbacks_.push_back([done = std::move(it->done), failure] { done(nullptr, &failure); });
    it = d.queue.erase(it);
  }
}

void Fleet::loop() {
  for (;;) {
    std::vector<std::function<void()>> callbacks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, kTick, [&] { return stop_; });
      if (stop_) return;
      tick();
      callbacks.swap(pending_callbacks_);
    }
    for (auto& c : callbacks) c();
    if (seconds_between(last_policy_save_, Clock::now()) >= 60) {
      last_policy_save_ = Clock::now();
      save_policy_states();
    }
    if (events_.heartbeat && seconds_between(last_heartbeat_, Clock::now()) >= kHeartbeatS) {
      last_heartbeat_ = Clock::now();
      events_.heartbeat();
    }
  }
}

// Gives queued requests to ready instances with a free slot, least loaded first. Batch
// requests need a slot nobody uses; interactive ones count only interactive requests against
// the slots, so they never wait behind batch work (the worker pauses it for them). The queue
// is ordered interactive first, and a batch request needs more than an interactive one, so
// the first request that cannot be placed ends the round.
void Fleet::dispatch(Deployment& d) {
  while (!d.queue.empty()) {
    const bool batch = d.queue.front().cls == RequestClass::kBatch;
    Instance* best = nullptr;
    for (auto& i : d.instances) {
      if (i->state != Instance::State::kReady || i->unreachable) continue;
      const int used = batch ? i->in_flight : i->in_flight - i->batch_in_flight;
      if (used < d.spec.slots && (!best || i->in_flight < best->in_flight)) best = i.get();
    }
    if (!best) return;
    Waiter w = std::move(d.queue.front());
    d.queue.pop_front();
    if (best->in_flight++ == 0) set_phase(*best, InstancePhase::kReady);
    if (batch) ++best->batch_in_flight;
    Lease lease;
    lease.cls = w.cls;
    lease.deployment = d.spec.name;
    lease.instance_id = best->id;
    lease.address = best->address;
    lease.queue_ms = seconds_between(w.enqueued, Clock::now()) * 1000;
    if (w.cold) lease.cold_start_ms = lease.queue_ms;
    pending_callbacks_.push_back([done = std::move(w.done), lease] { done(&lease, nullptr); });
  }
}

void Fleet::set_phase(Instance& inst, InstancePhase phase, double start_s) {
  if (inst.phase == phase && inst.reported_ready) return;
  inst.phase = phase;
  if (events_.instance_phase) {
    auto cb = events_.instance_phase;
    pending_callbacks_.push_back([cb, id = inst.id, phase, start_s] { cb(id, phase, start_s); });
  }
}

std::vector<DeviceMemory> Fleet::device_memory() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<DeviceMemory> out;
  std::map<std::string, bool> seen;
  for (const auto& [n, d] : deployments_) {
    if (seen[d->spec.device]) continue;
    seen[d->spec.device] = true;
    out.push_back({d->spec.device, placement_.used(d->spec.device), placement_.capacity(d->spec.device)});
  }
  return out;
}

core::Status Fleet::scale(const std::string& name, int n) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = deployments_.find(name);
  if (it == deployments_.end()) return core::Status::error("unknown deployment '" + name + "'");
  if (n < 0 || n > it->second->spec.max_instances)
    return core::Status::error("instances must be between 0 and max_instances (" +
                               std::to_string(it->second->spec.max_instances) + ")");
  it->second->spec.min_instances = n;
  wake_.notify_all();
  return core::Status::ok();
}

core::Status Fleet::prewarm(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = deployments_.find(name);
  if (it == deployments_.end()) return core::Status::error("unknown deployment '" + name + "'");
  const double hold_s = it->second->spec.keep_alive_s < 0 ? 86400.0 * 365 : std::max(60.0, it->second->spec.keep_alive_s);
  it->second->prewarm_until = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(hold_s * 1e6));
  wake_.notify_all();
  return core::Status::ok();
}

// Reserves the deployment's memory on its device for a new instance. When it does not fit,
// stops idle instances of deployments of no higher priority (above their min_instances) to
// make room; their memory frees when they exit, so the start happens on a later tick.
bool Fleet::reserve_or_make_room(Deployment& d, const std::string& instance_id) {
  auto r = placement_.reserve(instance_id, d.spec.device, d.spec.memory_bytes);
  if (r) return true;
  std::map<std::string, std::pair<Deployment*, Instance*>> owners;
  for (auto& [n, o] : deployments_)
    for (auto& i : o->instances) owners[i->id] = {o.get(), i.get()};
  auto is_idle = [&](const std::string& id) {
    auto it = owners.find(id);
    if (it == owners.end()) return false;
    auto [o, i] = it->second;
    if (o == &d || o->spec.priority > d.spec.priority || !o->queue.empty()) return false;
    if (o->count(Instance::State::kReady) + o->count(Instance::State::kStarting) <= o->spec.min_instances) return false;
    return i->state == Instance::State::kReady && i->in_flight == 0;
  };
  auto victims = placement_.eviction_candidates(d.spec.device, d.spec.memory_bytes, is_idle);
  for (const auto& id : victims) {
    auto [o, i] = owners[id];
    record_decision(*o, "evict", "making room for '" + d.spec.name + "' on " + d.spec.device,
                    "needed_bytes=" + std::to_string(d.spec.memory_bytes) +
                        " used_bytes=" + std::to_string(placement_.used(d.spec.device)) +
                        " capacity_bytes=" + std::to_string(placement_.capacity(d.spec.device)));
    stop_instance(*o, *i, ("making room for '" + d.spec.name + "'").c_str());
  }
  return false;
}

void Fleet::start_instance(Deployment& d, bool for_request, bool may_evict) {
  auto inst = std::make_unique<Instance>();
  inst->id = d.spec.name + "-" + std::to_string(next_instance_);
  if (may_evict ? !reserve_or_make_room(d, inst->id) : !placement_.reserve(inst->id, d.spec.device, d.spec.memory_bytes))
    return;
  ++next_instance_;
  int port = 0;
  if (d.spec.uses_unix_socket) {
    const std::string sock = run_dir_ + "/" + inst->id + ".sock";
    std::error_code ec;
    std::filesystem::remove(sock, ec);
    inst->address = "unix:" + sock;
  } else {
    port = free_port();
    inst->address = "127.0.0.1:" + std::to_string(port);
  }
  auto argv = d.spec.command(inst->address, port);
  core::Status status = argv ? core::Status::ok() : argv.status();
  if (argv) {
    auto p = Process::spawn(argv.value(), d.spec.env);
    if (p)
      inst->process = std::move(p.value());
    else
      status = p.status();
  }
  if (!status) {
    placement_.release(inst->id);
    core::log_error("fleet", "cannot start an instance of '" + d.spec.name + "': " + status.message());
    ++d.consecutive_failures;
    d.next_start_allowed = Clock::now() + std::chrono::seconds(std::min(30, 1 << std::min(d.consecutive_failures, 5)));
    if (d.consecutive_failures >= 3)
      fail_all(d, AcquireError::kStartFailed, "cannot start '" + d.spec.name + "': " + status.message());
    return;
  }
  if (for_request) ++d.cold_starts;
  core::log_info("fleet", "starting " + inst->id + " (pid " + std::to_string(inst->process->pid()) + ") at " +
                              inst->address + (for_request ? " for a waiting request" : ""));
  if (events_.instance_started) {
    auto cb = events_.instance_started;
    auto spec = d.spec;
    auto id = inst->id;
    pending_callbacks_.push_back([cb, id, spec, for_request] { cb(id, spec, for_request); });
  }
  d.instances.push_back(std::move(inst));
}

void Fleet::stop_instance(Deployment& d, Instance& inst, const char* why) {
  core::log_info("fleet", "stopping " + inst.id + ": " + why);
  inst.state = Instance::State::kDraining;
  inst.drain_started = Clock::now();
  set_phase(inst, InstancePhase::kDraining);
  if (inst.process && inst.in_flight == 0) inst.process->signal(SIGTERM);
}

void Fleet::tick() {
  const auto now = Clock::now();
  auto visit = [&](Deployment& d) {
    // Instance lifecycle.
    auto mark_ready = [&](Instance& i) {
      i.state = Instance::State::kReady;
      i.idle_since = now;
      i.last_health = now;
      d.consecutive_failures = 0;
      const double start_s = seconds_between(i.started, now);
      core::log_info("fleet", i.id + " ready after " + std::to_string(static_cast<int>(start_s * 1000)) + " ms");
      set_phase(i, i.in_flight > 0 ? InstancePhase::kReady : InstancePhase::kIdle, start_s);
      i.reported_ready = true;
    };
    for (auto& ip : d.instances) {
      Instance& i = *ip;
      for (const auto& line : i.process->read_lines())
        if (line.rfind("ready ", 0) == 0 && i.state == Instance::State::kStarting) mark_ready(i);
      if (i.state == Instance::State::kStarting && !d.spec.announces_ready && probe_ && probe_(i.address))
        mark_ready(i);
      if (auto code = i.process->poll_exit()) {
        if (i.state != Instance::State::kDraining) {
          ++d.crashes;
          ++d.consecutive_failures;
          d.next_start_allowed = now + std::chrono::seconds(std::min(30, 1 << std::min(d.consecutive_failures, 5)));
          core::log_error("fleet", i.id + " exited unexpectedly with status " + std::to_string(*code) +
                                       (i.state == Instance::State::kStarting ? " while starting" : ""));
          if (i.state == Instance::State::kStarting && d.consecutive_failures >= 3)
            fail_all(
                d, AcquireError::kStartFailed,
                "instances of '" + d.spec.name + "' fail to start (last exit status " + std::to_string(*code) + ")");
        }
        i.state = Instance::State::kDraining;
        placement_.release(i.id);
        if (events_.instance_stopped) {
          auto cb = events_.instance_stopped;
          pending_callbacks_.push_back([cb, id = i.id] { cb(id); });
        }
        ip.reset();
        continue;
      }
      if (i.state == Instance::State::kStarting && seconds_between(i.started, now) > d.spec.start_timeout_s) {
        core::log_error("fleet", i.id + " did not become ready within " +
                                     std::to_string(static_cast<int>(d.spec.start_timeout_s)) + " s");
        ++d.consecutive_failures;
        i.process->signal(SIGKILL);
        i.state = Instance::State::kDraining;
        if (d.consecutive_failures >= 3)
          fail_all(d, AcquireError::kStartFailed, "instances of '" + d.spec.name + "' do not become ready in time");
      }
      if (i.state == Instance::State::kReady && probe_ && seconds_between(i.last_health, now) > kHealthCheckS) {
        i.last_health = now;
        if (!probe_(i.address)) {
          core::log_error("fleet", i.id + " failed its health check: restarting it");
          ++d.crashes;
          i.process->signal(SIGKILL);
          i.state = Instance::State::kDraining;
        } else if (i.unreachable) {
          i.unreachable = false;
          dispatch(d);
        }
      }
      if (i.state == Instance::State::kDraining) {
        if (i.in_flight == 0) i.process->signal(SIGTERM);
        if (seconds_between(i.drain_started, now) > kDrainGraceS) i.process->signal(SIGKILL);
      }
    }
    d.instances.erase(std::remove(d.instances.begin(), d.instances.end(), nullptr), d.instances.end());
  };
  for (auto& [n, d] : deployments_) visit(*d);
  for (auto& d : retired_) visit(*d);
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(), [](const auto& d) { return d->instances.empty(); }),
                 retired_.end());

  std::set<std::string> contended_devices;  // devices with requests waiting for an instance
  for (const auto& [name, dp] : deployments_)
    if (!dp->queue.empty()) contended_devices.insert(dp->spec.device);
  for (auto& [name, dp] : deployments_) {
    Deployment& d = *dp;
    // Requests that waited too long (batch ones sit behind interactive ones: check them all).
    fail_waiters(d,
                 {AcquireError::kTimeout,
                  "no instance of '" + name + "' could take the request within " +
                      std::to_string(static_cast<int>(d.spec.request_timeout_s)) + " s (request_timeout)",
                  5},
                 [&](const Waiter& w) { return seconds_between(w.enqueued, now) > d.spec.request_timeout_s; });
    dispatch(d);
    while (!d.ttft_samples.empty() && seconds_between(d.ttft_samples.front().first, now) > 60)
      d.ttft_samples.pop_front();
    // The policy sees interactive demand only; batch demand may add up to batch_max_instances.
    const int batch_queued = d.queued(RequestClass::kBatch);
    const int batch_in_flight = d.batch_in_flight();
    DeploymentObservation o;
    // Wall-clock time: schedule-aware policies read the hour of day from it.
    o.now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    o.ttft_objective_s = d.spec.ttft_objective_s;
    o.ttft_p95_s = d.ttft_p95();
    o.min_instances = std::max(d.spec.min_instances, now < d.prewarm_until ? 1 : 0);
    o.max_instances = d.spec.max_instances;
    o.slots = d.spec.slots;
    o.keep_alive_s = d.spec.keep_alive_s;
    o.queued = d.queued(RequestClass::kInteractive);
    o.in_flight = d.in_flight() - batch_in_flight;
    o.arrivals = d.arrivals;
    d.arrivals = 0;
    for (const auto& i : d.instances) {
      if (i->state == Instance::State::kDraining) continue;
      const int interactive = i->in_flight - i->batch_in_flight;
      o.instances.push_back({i->id, i->state == Instance::State::kReady, interactive,
                             interactive == 0 ? seconds_between(i->interactive_idle_since, now) : 0.0});
    }
    const int live = static_cast<int>(o.instances.size());
    const int batch_want =
        std::min(d.spec.batch_max_instances, (batch_queued + batch_in_flight + d.spec.slots - 1) / d.spec.slots);
    // What the decision saw, for its log line; formatted only when one is logged (every tick
    // passes here).
    auto inputs = [&] {
      char text[256];
      std::snprintf(text, sizeof text,
                    "live=%d in_flight=%d queued=%d batch_in_flight=%d batch_queued=%d min=%d max=%d ttft_p95_s=%.3f",
                    live, o.in_flight, o.queued, batch_in_flight, batch_queued, o.min_instances, o.max_instances,
                    o.ttft_p95_s);
      return std::string(text);
    };
    ScalingDecision decision = d.policy->decide(o);
    if (!decision.reason.empty())
      core::log_info("autoscale", "policy deployment=" + name + " policy=" + d.spec.policy + " desired=" +
                                      std::to_string(decision.desired) + " " + inputs() + " reason=\"" +
                                      decision.reason + "\"");
    // An instance that batch work keeps busy may still go once interactive demand left it,
    // as long as the batch allowance is kept.
    int keep_for_batch = batch_want;
    for (const auto& id : decision.stop)
      for (auto& i : d.instances) {
        if (i->id != id || i->state != Instance::State::kReady || i->in_flight > i->batch_in_flight) continue;
        if (i->batch_in_flight > 0 && keep_for_batch-- > 0) continue;
        const std::string why = i->batch_in_flight > 0 ? "no interactive demand; its batch work drains"
                                : decision.reason.empty() ? "idle past keep-alive"
                                                          : decision.reason;
        record_decision(d, "scale_in", why, inputs());
        stop_instance(d, *i, why.c_str());
      }
    const int desired = std::max({decision.desired, o.min_instances, batch_want});
    if (live < desired && now >= d.next_start_allowed) {
      const uint64_t capacity = placement_.capacity(d.spec.device);
      if (capacity > 0 && d.spec.memory_bytes > capacity) {
        fail_all(d, AcquireError::kNoMemory,
                 "deployment '" + name + "' needs " + gib(d.spec.memory_bytes) + " but device " + d.spec.device +
                     " has " + gib(capacity) + " in all");
      } else {
        // Capacity the policy wants without a request waiting for it (its windows still
        // remember load) must not take memory from a deployment that has requests waiting,
        // or two deployments sharing a device would evict each other in turn.
        const bool batch_needs = batch_queued > 0 && live < d.spec.batch_max_instances;
        const bool for_request = o.queued > 0 || batch_needs;
        const bool needed = for_request || live < o.min_instances;
        if (needed || !contended_devices.count(d.spec.device)) {
          const size_t before = d.instances.size();
          start_instance(d, for_request, needed);
          if (d.instances.size() > before) {
            const std::string reason = o.queued > 0         ? "interactive requests waiting"
                                       : batch_needs         ? "batch requests waiting (batch_max_instances " +
                                                         std::to_string(d.spec.batch_max_instances) + ")"
                                       : now < d.prewarm_until ? "admin pre-warm"
                                       : live < d.spec.min_instances ? "below min_instances"
                                                                     : decision.reason;
            record_decision(d, for_request ? "scale_out" : "prewarm", reason.empty() ? "policy" : reason, inputs());
          }
        }
      }
    }
  }
}

void Fleet::record_decision(const Deployment& d, const std::string& action, const std::string& reason,
                            const std::string& inputs) {
  core::log_info("autoscale", "decision action=" + action + " deployment=" + d.spec.name + " policy=" + d.spec.policy +
                                  " " + inputs + " reason=\"" + reason + "\"");
  if (events_.decision) {
    auto cb = events_.decision;
    pending_callbacks_.push_back([cb, name = d.spec.name, action, reason] { cb(name, action, reason); });
  }
}

void Fleet::observe_ttft(const std::string& deployment, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = deployments_.find(deployment);
  if (it == deployments_.end()) return;
  auto& samples = it->second->ttft_samples;
  samples.emplace_back(Clock::now(), seconds);
  if (samples.size() > 4096) samples.pop_front();
}

}  // namespace zs::platform
