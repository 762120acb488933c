#include "platform/fleet/fleet.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "core/log.h"
#include "worker/worker_protocol.h"

namespace zs::platform {

using Clock = std::chrono::steady_clock;

namespace {

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

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

constexpr double kHeartbeatS = 5;
constexpr double kPolicySaveS = 60;

FleetCoreOptions core_options(std::vector<DeviceConfig> devices) {
  FleetCoreOptions o;
  o.devices = std::move(devices);
  // Policies read the time of day: they see Unix time.
  o.wall_clock_offset_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return o;
}

}  // namespace

Fleet::Fleet(std::vector<DeviceConfig> devices, std::string run_dir, Probe probe, FleetEvents events,
             std::chrono::milliseconds tick)
    : run_dir_(std::move(run_dir)),
      probe_(std::move(probe)),
      events_(std::move(events)),
      epoch_(Clock::now()),
      core_(core_options(std::move(devices))),
      tick_(tick) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir_, ec);
  last_heartbeat_ = last_policy_save_ = Clock::now();
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ >= 0 && stop_fd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) == 0) watcher_ = std::thread([this] { watch_exits(); });
  }
  if (!watcher_.joinable()) core::log_warn("fleet", "no epoll: instance exits are seen on the next tick");
  thread_ = std::thread([this] { loop(); });
}

Fleet::~Fleet() {
  shutdown(std::chrono::milliseconds(5000));
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

double Fleet::now() const { return seconds_between(epoch_, Clock::now()); }

// ---------------------------------------------------------------------------------------------
// Calls into the core
// ---------------------------------------------------------------------------------------------

void Fleet::set_deployments(std::vector<DeploymentSpec> specs) {
  // The state store is I/O: read before taking the lock.
  if (events_.load_policy_state)
    for (auto& s : specs)
      if (auto state = events_.load_policy_state(s.name, s.policy)) s.policy_state = std::move(*state);
  Pending p;
  {
    core::MutexLock lock(mutex_);
    core_.set_deployments(std::move(specs), now(), p.actions);
    collect_locked(p);
  }
  wake();
  apply(p);
}

bool Fleet::has_deployment(const std::string& name) const {
  core::MutexLock lock(mutex_);
  return core_.deployment_index(name) >= 0;
}

std::vector<std::string> Fleet::deployment_names() const {
  core::MutexLock lock(mutex_);
  return core_.deployment_names();
}

uint64_t Fleet::acquire(const std::string& name, RequestClass cls, Done done, int order,
                        std::optional<Clock::time_point> waiting_since) {
  std::optional<AcquireFailure> failure;
  uint64_t ticket = 0;
  Pending p;
  {
    core::MutexLock lock(mutex_);
    const int dep = core_.deployment_index(name);
    if (stop_) {
      failure = AcquireFailure{core::Status::unavailable("the server is shutting down"), 5};
    } else if (auto closed = closed_.find(cls); closed != closed_.end()) {
      failure = AcquireFailure{core::Status::unavailable(closed->second), 5};
    } else if (dep < 0) {
      failure = AcquireFailure{core::Status::not_found("unknown deployment '" + name + "'"), 0};
    } else {
      ticket = next_ticket_++;
      // A request that times out while its instance is pending in a cluster scheduler says
      // why (the scheduler's reason), read when the failure is answered.
      waiting_[ticket] = [this, name, done = std::move(done)](const Lease* lease, const AcquireFailure* f) {
        if (f && f->status.code() == core::StatusCode::kDeadlineExceeded) {
          if (const std::string reason = pending_reason(name); !reason.empty()) {
            AcquireFailure g = *f;
            g.status = core::Status::deadline_exceeded(f->status.message() + "; its instance is still pending in Slurm (reason: " + reason + ")");
            return done(lease, &g);
          }
        }
        done(lease, f);
      };
      core_.acquire(dep, cls, order, ticket, now(), p.actions,
                    waiting_since ? seconds_between(epoch_, *waiting_since) : FleetCore::kNever);
      collect_locked(p);
    }
  }
  if (failure) {
    done(nullptr, &*failure);
    return 0;
  }
  wake();  // a request that must wait may need an instance started now
  apply(p);
  return ticket;
}

void Fleet::cancel(uint64_t ticket) {
  core::MutexLock lock(mutex_);
  if (core_.cancel(ticket)) waiting_.erase(ticket);
}

void Fleet::release(const Lease& lease, bool instance_failed) {
  Pending p;
  {
    core::MutexLock lock(mutex_);
    core_.release(lease.instance, lease.cls, instance_failed, now(), p.actions);
    collect_locked(p);
  }
  if (instance_failed) wake();  // probe it at once
  apply(p);
}

void Fleet::wake() {
  {
    core::MutexLock lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

bool Fleet::instance_gone(const Lease& lease) const {
  core::MutexLock lock(mutex_);
  return core_.instance_id(lease.instance).empty();
}

void Fleet::observe_ttft(const std::string& deployment, double seconds) {
  core::MutexLock lock(mutex_);
  const int dep = core_.deployment_index(deployment);
  if (dep >= 0) core_.observe_ttft(dep, seconds, now());
}

void Fleet::close_class(RequestClass cls, const std::string& message) {
  Pending p;
  {
    core::MutexLock lock(mutex_);
    closed_.emplace(cls, message);  // the first reason stays
    core_.fail_waiting(cls, {core::Status::unavailable(message), 5}, p.actions);
    collect_locked(p);
  }
  apply(p);
}

std::vector<DeploymentStatus> Fleet::status() const {
  std::vector<DeploymentStatus> out;
  {
    core::MutexLock lock(mutex_);
    out = core_.status(now());
  }
  core::MutexLock lock(procs_mutex_);
  for (const auto& [key, proc] : procs_) {
    if (proc.pending_reason.empty()) continue;
    for (auto& s : out)
      if (s.name == proc.deployment) s.pending_reason = proc.pending_reason;
  }
  return out;
}

std::vector<DeviceMemory> Fleet::device_memory() const {
  core::MutexLock lock(mutex_);
  return core_.device_memory();
}

core::Status Fleet::scale(const std::string& name, int n) {
  core::Status st;
  {
    core::MutexLock lock(mutex_);
    st = core_.scale(name, n);
  }
  wake();
  return st;
}

core::Status Fleet::prewarm(const std::string& name) {
  core::Status st;
  {
    core::MutexLock lock(mutex_);
    st = core_.prewarm(name, now());
  }
  wake();
  return st;
}

void Fleet::save_policy_states() {
  if (!events_.save_policy_state) return;
  std::vector<std::tuple<std::string, std::string, std::string>> states;
  {
    core::MutexLock lock(mutex_);
    states = core_.policy_states();
  }
  for (const auto& [name, policy, state] : states) events_.save_policy_state(name, policy, state);
}

void Fleet::shutdown(std::chrono::milliseconds grace) {
  Pending p;
  {
    core::MutexLock lock(mutex_);
    if (stop_) return;
    stop_ = true;
  }
  save_policy_states();
  {
    core::MutexLock lock(mutex_);
    (void)core_.shutdown({core::Status::unavailable("the server is shutting down"), 5}, p.actions);
    collect_locked(p);
  }
  wake();
  if (thread_.joinable()) thread_.join();
  if (watcher_.joinable()) {
    const uint64_t one = 1;
    ssize_t ignored = write(stop_fd_, &one, sizeof one);
    (void)ignored;
    watcher_.join();
  }
  apply(p);
  std::vector<Proc> all;
  {
    core::MutexLock lock(procs_mutex_);
    while (probes_running_ > 0) probes_done_.wait(procs_mutex_);
    for (auto& [key, proc] : procs_) all.push_back(std::move(proc));
    procs_.clear();
  }
  // SIGTERM to all at once, so that they drain in parallel.
  for (auto& proc : all) proc.process->signal(SIGTERM);
  const auto deadline = Clock::now() + grace;
  for (auto& proc : all) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    proc.process->terminate(std::max(left, std::chrono::milliseconds(0)));
    for (const auto& line : proc.process->read_lines()) read_announcement(line, proc);
    if (events_.instance_stopped) events_.instance_stopped(proc.id, proc.ran);
  }
}

// ---------------------------------------------------------------------------------------------
// Applying actions
// ---------------------------------------------------------------------------------------------

void Fleet::collect_locked(Pending& p) {
  for (const auto& d : p.actions.dispatches) p.dispatch_done.push_back(take_waiting_locked(d.tag));
  for (const auto& f : p.actions.failures) p.failure_done.push_back(take_waiting_locked(f.tag));
  for (const auto& s : p.actions.starts) p.start_specs.push_back(core_.spec(s.deployment));
}

Fleet::Done Fleet::take_waiting_locked(uint64_t ticket) {
  auto it = waiting_.find(ticket);
  if (it == waiting_.end()) return Done();
  Done d = std::move(it->second);
  waiting_.erase(it);
  return d;
}

void Fleet::apply(Pending& p) {
  FleetActions& a = p.actions;
  for (const auto& line : a.notes) core::log_info("fleet", line);
  for (const auto& line : a.errors) core::log_error("fleet", line);
  for (const auto& d : a.decisions) {
    if (d.action == "policy") {
      core::log_info("autoscale", "policy deployment=" + d.deployment + " policy=" + d.policy + " " + d.inputs +
                                      " reason=\"" + d.reason + "\"");
      continue;
    }
    core::log_info("autoscale", "decision action=" + d.action + " deployment=" + d.deployment +
                                    " policy=" + d.policy + " " + d.inputs + " reason=\"" + d.reason + "\"");
    if (events_.decision) events_.decision(d.deployment, d.action, d.reason);
  }
  {
    core::MutexLock lock(procs_mutex_);
    for (const auto& s : a.signals) {
      auto it = procs_.find(s.instance);
      if (it != procs_.end()) it->second.process->signal(s.kill ? SIGKILL : SIGTERM);
    }
  }
  for (size_t i = 0; i < a.starts.size(); ++i) start(a.starts[i], p.start_specs[i]);
  for (const auto& probe : a.probes) run_probe(probe);
  for (const auto& sleep : a.sleeps) run_sleep(sleep);
  for (const auto& ph : a.phases)
    if (events_.instance_phase) events_.instance_phase(ph.id, ph.phase, ph.start_s);
  for (size_t i = 0; i < a.dispatches.size(); ++i) {
    Lease& lease = a.dispatches[i].lease;
    {
      core::MutexLock lock(procs_mutex_);
      auto it = procs_.find(lease.instance);
      if (it != procs_.end()) {
        lease.address = it->second.address;
        lease.token = it->second.token;
      }
    }
    if (p.dispatch_done[i]) p.dispatch_done[i](&lease, nullptr);
  }
  for (size_t i = 0; i < a.failures.size(); ++i)
    if (p.failure_done[i]) p.failure_done[i](nullptr, &a.failures[i].failure);
}

void Fleet::start(const StartAction& a, const DeploymentSpec& spec) {
  std::string address;
  int port = 0;
  if (spec.uses_unix_socket) {
    const std::string sock = run_dir_ + "/" + a.id + ".sock";
    std::error_code ec;
    std::filesystem::remove(sock, ec);
    address = "unix:" + sock;
  } else {
    port = free_port();
    address = "127.0.0.1:" + std::to_string(port);
  }
  auto argv = spec.command(address, port);
  core::Status status = argv ? core::Status::ok() : argv.status();
  std::unique_ptr<Process> process;
  if (argv) {
    auto spawned = Process::spawn(argv.value(), spec.env);
    if (spawned)
      process = std::move(spawned.value());
    else
      status = spawned.status();
  }
  if (!status) {
    Pending p;
    {
      core::MutexLock lock(mutex_);
      core_.start_failed(a.instance, status.message(), now(), p.actions);
      collect_locked(p);
    }
    apply(p);
    return;
  }
  core::log_info("fleet", "starting " + a.id + " (pid " + std::to_string(process->pid()) + ") at " + address +
                              (a.for_request ? " for a waiting request" : ""));
  {
    core::MutexLock lock(procs_mutex_);
    // Watched from now on: the pidfd stays valid (and in the epoll set) until the Proc is
    // dropped after its exit was reaped; one-shot, so an exit wakes the loop once.
    if (epoll_fd_ >= 0 && process->exit_fd() >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLONESHOT;
      ev.data.u64 = a.instance;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, process->exit_fd(), &ev) != 0)
        core::log_warn("fleet", "cannot watch the exit of " + a.id + ": it is seen on the next tick");
    }
    // So is its stdout until it announces "ready": the request that waits for it is sent the
    // moment it can be, not on the next tick (one-shot, re-armed after each read).
    bool awaiting_ready = false;
    if (epoll_fd_ >= 0 && spec.announces_ready && process->out_fd() >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLONESHOT;
      ev.data.u64 = a.instance;
      awaiting_ready = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, process->out_fd(), &ev) == 0;
    }
    Proc proc;
    proc.id = a.id;
    proc.address = address;
    proc.process = std::move(process);
    proc.awaiting_ready = awaiting_ready;
    proc.deployment = spec.name;
    procs_[a.instance] = std::move(proc);
  }
  if (events_.instance_started) events_.instance_started(a.id, spec, a.for_request);
}

void Fleet::detach_counted(std::function<void()> fn) {
  ++probes_running_;
  std::thread([this, fn = std::move(fn)] {
    fn();
    core::MutexLock lock(procs_mutex_);
    --probes_running_;
    probes_done_.notify_all();  // under the lock: shutdown may destroy the Fleet once it sees 0
  }).detach();
}

std::string Fleet::pending_reason(const std::string& deployment) const {
  core::MutexLock lock(procs_mutex_);
  for (const auto& [key, proc] : procs_)
    if (proc.deployment == deployment && !proc.pending_reason.empty()) return proc.pending_reason;
  return "";
}

// On a thread of its own: a probe may take seconds (a worker that hangs), and must delay
// nothing else.
void Fleet::run_probe(const ProbeAction& a) {
  core::MutexLock lock(procs_mutex_);
  auto it = procs_.find(a.instance);
  if (it == procs_.end() || !probe_) return;
  detach_counted([this, a, address = it->second.address] {
    const bool ok = probe_(address);
    Pending p;
    {
      core::MutexLock lock(mutex_);
      core_.probe_result(a.instance, ok, now(), p.actions);
      collect_locked(p);
    }
    apply(p);
  });
}

// Likewise: the sleep call waits for the worker's engine to finish its step.
void Fleet::run_sleep(const SleepAction& a) {
  core::MutexLock lock(procs_mutex_);
  auto it = procs_.find(a.instance);
  if (it == procs_.end()) return;
  detach_counted([this, a, address = it->second.address, id = it->second.id] {
    const core::Status result =
        events_.sleep ? events_.sleep(address) : core::Status::unavailable("this fleet cannot put instances to sleep");
    if (result) core::log_info("fleet", id + " is asleep");
    else if (!result.is_failed_precondition()) core::log_warn("fleet", id + " did not go to sleep: " + result.message());
    Pending p;
    {
      core::MutexLock lock(mutex_);
      core_.sleep_result(a.instance, result, now(), p.actions);
      collect_locked(p);
    }
    apply(p);
  });
}

// ---------------------------------------------------------------------------------------------
// The control thread
// ---------------------------------------------------------------------------------------------

void Fleet::watch_exits() {
  for (;;) {
    epoll_event events[16];
    const int n = epoll_wait(epoll_fd_, events, 16, -1);
    if (n < 0 && errno != EINTR) {
      core::log_error("fleet", std::string("epoll_wait: ") + std::strerror(errno) + "; exits are seen on the next tick");
      return;
    }
    bool exited = false;  // or wrote on stdout before being ready
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) return;  // shutdown
      exited = true;
    }
    if (!exited) continue;
    {
      core::MutexLock lock(mutex_);
      woken_ = true;
    }
    wake_.notify_all();
  }
}

// One line an instance printed (worker/worker_protocol.h), applied to its Proc.
Fleet::Announcement Fleet::read_announcement(const std::string& line, Proc& proc) {
  auto starts = [&](const char* prefix) { return line.rfind(prefix, 0) == 0; };
  // The number after "<key>=" in the line; -1 when the key is missing.
  auto number = [&](const char* key) {
    const std::string k = std::string(key) + "=";
    const size_t at = line.find(k);
    return at == std::string::npos ? -1.0 : std::strtod(line.c_str() + at + k.size(), nullptr);
  };
  if (starts(worker::kStartedPrefix)) {
    if (const double ms = number(worker::kLoadMsKey); ms >= 0) proc.load_s = ms / 1000;
    return Announcement::kOther;
  }
  if (starts(worker::kWarmedPrefix)) {
    proc.first_pass_s = number(worker::kFirstPassMsKey) / 1000;
    proc.first_pass_rows = static_cast<int>(number(worker::kRowsKey));
    return proc.first_pass_s >= 0 ? Announcement::kWarmed : Announcement::kOther;
  }
  if (starts(worker::kPendingPrefix)) {
    proc.pending_reason = line.substr(std::strlen(worker::kPendingPrefix));
    return Announcement::kOther;
  }
  if (starts(worker::kRetiringPrefix)) return Announcement::kRetiring;
  if (starts(worker::kRanPrefix)) {
    double start = 0, end = 0;
    if (std::sscanf(line.c_str() + std::strlen(worker::kRanPrefix), "%lf %lf", &start, &end) == 2 &&
        std::isfinite(start) && std::isfinite(end) && start > 0 && end >= start)
      proc.ran = RunSpan{start, end};
    else
      core::log_warn("fleet", proc.id + " printed a malformed line '" + line + "' (want: ran <start> <end>)");
    return Announcement::kOther;
  }
  if (!starts(worker::kReadyPrefix)) return Announcement::kOther;
  // "ready <address> [<token>]": a runtime that learns where its instance listens only once
  // it runs (a cluster job) names the address and the instance's token.
  const std::string rest = line.substr(std::strlen(worker::kReadyPrefix));
  const size_t sp = rest.find(' ');
  if (sp != std::string::npos && !rest.empty()) {
    proc.address = rest.substr(0, sp);
    proc.token = rest.substr(sp + 1);
  } else if (!rest.empty() && proc.address.rfind("unix:", 0) != 0) {
    proc.address = rest;
  }
  proc.pending_reason.clear();
  return Announcement::kReady;
}

void Fleet::loop() {
  for (;;) {
    {
      core::MutexLock lock(mutex_);
      if (!stop_ && !woken_) wake_.wait_for(mutex_, tick_);
      woken_ = false;
      if (stop_) return;
    }
    // What the processes did since the last tick (non-blocking reads and waitpid).
    std::vector<InstanceKey> ready, retiring;
    std::vector<std::tuple<std::string, double, double>> breakdowns;  // id, spawn_s, load_s
    std::vector<std::tuple<std::string, double, int>> warmed;         // id, first pass s, rows
    std::vector<std::pair<InstanceKey, int>> exited;
    std::vector<Proc> gone;
    {
      core::MutexLock lock(procs_mutex_);
      for (auto it = procs_.begin(); it != procs_.end();) {
        Proc& proc = it->second;
        const std::vector<std::string> lines = proc.process->read_lines();
        if (lines.empty() && proc.awaiting_ready && ++proc.empty_reads > 64) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, proc.process->out_fd(), nullptr);
          proc.awaiting_ready = false;  // its output ended: "ready" is looked for on the tick
        }
        for (const auto& line : lines) {
          const Announcement a = read_announcement(line, proc);
          if (a == Announcement::kRetiring) retiring.push_back(it->first);
          if (a == Announcement::kWarmed) warmed.emplace_back(proc.id, proc.first_pass_s, proc.first_pass_rows);
          if (a != Announcement::kReady) continue;
          ready.push_back(it->first);
          if (proc.load_s >= 0) {
            const double total_s = seconds_between(proc.spawned_at, Clock::now());
            breakdowns.emplace_back(proc.id, std::max(0.0, total_s - proc.load_s), proc.load_s);
          }
          if (proc.awaiting_ready) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, proc.process->out_fd(), nullptr);
          proc.awaiting_ready = false;
        }
        if (proc.awaiting_ready) {  // re-armed for its next output
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLONESHOT;
          ev.data.u64 = it->first;
          if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, proc.process->out_fd(), &ev) != 0) proc.awaiting_ready = false;
        }
        if (auto code = it->second.process->poll_exit()) {
          // What it printed last, between the read above and its exit ("ran ...").
          for (const auto& line : proc.process->read_lines()) read_announcement(line, proc);
          exited.emplace_back(it->first, *code);
          gone.push_back(std::move(it->second));
          it = procs_.erase(it);
        } else {
          ++it;
        }
      }
    }
    Pending p;
    {
      core::MutexLock lock(mutex_);
      if (stop_) return;
      const double t = now();
      for (InstanceKey k : ready) core_.instance_ready(k, t, p.actions);
      for (InstanceKey k : retiring) core_.instance_retiring(k, t, p.actions);
      for (const auto& [k, code] : exited) core_.instance_exited(k, code, t, p.actions);
      core_.tick(t, p.actions);
      collect_locked(p);
    }
    for (const auto& [id, spawn_s, load_s] : breakdowns) {
      char text[96];
      std::snprintf(text, sizeof text, " start: spawn %.1f ms, load %.1f ms", spawn_s * 1000, load_s * 1000);
      core::log_info("fleet", id + text);
      if (events_.start_breakdown) events_.start_breakdown(id, spawn_s, load_s);
    }
    for (const auto& [id, seconds, rows] : warmed) {
      char text[96];
      std::snprintf(text, sizeof text, " start: first pass %.1f ms (%d rows)", seconds * 1000, rows);
      core::log_info("fleet", id + text);
      if (events_.first_pass) events_.first_pass(id, seconds, rows);
    }
    for (const auto& proc : gone)
      if (events_.instance_stopped) events_.instance_stopped(proc.id, proc.ran);
    gone.clear();
    apply(p);
    const auto wall = Clock::now();
    if (seconds_between(last_policy_save_, wall) >= kPolicySaveS) {
      last_policy_save_ = wall;
      save_policy_states();
    }
    if (events_.heartbeat && seconds_between(last_heartbeat_, wall) >= kHeartbeatS) {
      last_heartbeat_ = wall;
      events_.heartbeat();
    }
  }
}

}  // namespace zs::platform
