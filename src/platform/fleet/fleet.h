#pragma once
// The fleet: every deployment's instances on this node and the requests waiting for them.
// A request asks for a slot on an instance of its deployment (acquire); when none is free
// it waits in the deployment's bounded queue, and when no instance can take it one is
// started (a cold start) — requests are never dropped while one starts. Idle instances stop
// as their policy decides; crashed ones are restarted with back-off while there is demand.
//
// Every decision is the FleetCore's (fleet_core.h), the same code the simulator runs; this
// class is its runtime for local processes: it hands the core the time and what happened to
// the processes, and applies the core's actions (spawn, signal, probe over HTTP, answer
// waiting requests).
//
// Exits are seen as they happen: a watcher thread waits (epoll) on each instance's pidfd and
// wakes the control thread, which reaps the process and tells the core at once, so no request
// is dispatched to an instance after its exit has been seen. Where the kernel has no pidfd
// (before Linux 5.3) exits are found by waitpid on the next tick.
//
// Threading: every public method is thread-safe. One control thread ticks the core every
// 20 ms (and at once when woken by new work or an exit) and watches the processes. `mutex_` guards the core and is held only while the core
// decides: nothing that blocks runs under it (spawning, signals, health probes, callbacks,
// policy state I/O all run after it is released). Probes run on threads of their own, so a
// worker that hangs delays nothing but its own health check. Callbacks (Done, FleetEvents)
// run on whichever thread applied the action, never under a fleet lock; they may call back
// into the Fleet.
#include <map>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "platform/config/config.h"
#include "platform/fleet/fleet_core.h"
#include "platform/instance/process.h"

namespace zs::platform {

// When an instance ran by its runtime's own record (Unix seconds): a cluster scheduler's start
// and end of the instance's job. The ledger bills this span instead of the fleet's view.
struct RunSpan {
  double started_at = 0;
  double stopped_at = 0;
};

struct FleetEvents {
  std::function<void(const std::string& instance_id, const DeploymentSpec&, bool for_request)> instance_started;
  // ready (serving), idle (ready, nothing in flight), draining; start_s is set on the first ready.
  std::function<void(const std::string& instance_id, InstancePhase phase, double start_s)> instance_phase;
  // `ran`: the runtime's record of the run, when it printed one ("ran <start> <end>").
  std::function<void(const std::string& instance_id, const std::optional<RunSpan>& ran)> instance_stopped;
  std::function<void()> heartbeat;  // every few seconds
  // Asks the instance at `address` to sleep (the builtin worker's sleep call); may block, so it
  // runs on a thread of its own. kFailedPrecondition: it was busy. Unset: nothing sleeps.
  std::function<core::Status(const std::string& address)> sleep;
  // Where a builtin worker's start went, once it is ready: spawn (process start and everything
  // before its load) and load (map, parse, tokenizer, engine), in seconds.
  std::function<void(const std::string& instance_id, double spawn_s, double load_s)> start_breakdown;
  // The rest of a builtin worker's cold start: its first forward pass (rows computed, and how
  // long it took: a fresh process faults its weights in during that pass).
  std::function<void(const std::string& instance_id, double first_pass_s, int rows)> first_pass;
  // Every scaling decision (scale_out, scale_in, prewarm, evict) with its reason; the fleet
  // also logs it as one structured line.
  std::function<void(const std::string& deployment, const std::string& action, const std::string& reason)> decision;
  // What policies learned, kept across restarts: loaded when a deployment is set up, saved
  // every minute and at shutdown.
  std::function<std::optional<std::string>(const std::string& deployment, const std::string& policy)> load_policy_state;
  std::function<void(const std::string& deployment, const std::string& policy, const std::string& state)>
      save_policy_state;
};

class Fleet {
 public:
  using Probe = std::function<bool(const std::string& address)>;  // GET /health answered 200
  using Done = std::function<void(const Lease*, const AcquireFailure*)>;

  // `tick` is the control thread's period (tests lengthen it to show that exits and requests
  // do not wait for it).
  Fleet(std::vector<DeviceConfig> devices, std::string run_dir, Probe probe, FleetEvents events = {},
        std::chrono::milliseconds tick = std::chrono::milliseconds(20));
  ~Fleet();

  // Sets the deployments (at start and on reload). New ones are added; removed ones drain;
  // changed ones (fingerprint) drain their instances and start fresh ones on demand.
  void set_deployments(std::vector<DeploymentSpec> specs) EXCLUDES(mutex_);
  bool has_deployment(const std::string& name) const EXCLUDES(mutex_);
  std::vector<std::string> deployment_names() const EXCLUDES(mutex_);

  // Asks for a slot. done is called exactly once (on the control thread, or on the calling
  // thread), unless cancel() removes the ticket first. Interactive requests go before batch
  // ones and may use slots that batch requests hold (the worker pauses those); batch requests
  // take only free slots. Within a class, higher `order` goes first. A request sent again
  // (its instance could not be reached) passes when it first asked, `waiting_since`: its
  // request_timeout counts from then.
  uint64_t acquire(const std::string& deployment, RequestClass cls, Done done, int order = 0,
                   std::optional<std::chrono::steady_clock::time_point> waiting_since = std::nullopt)
      EXCLUDES(mutex_);
  void cancel(uint64_t ticket) EXCLUDES(mutex_);
  // The request that held the lease finished; instance_failed when the instance did not answer.
  void release(const Lease& lease, bool instance_failed = false) EXCLUDES(mutex_);
  // True once the lease's instance is known to have exited (or was never known): a request
  // not yet sent on it should go elsewhere (release it as failed and acquire again).
  bool instance_gone(const Lease& lease) const EXCLUDES(mutex_);
  // A time to first token seen by the gateway, for policies with a latency objective.
  void observe_ttft(const std::string& deployment, double seconds) EXCLUDES(mutex_);

  // Closes one class (at shutdown): its requests still waiting for a slot fail with `message`
  // (Retry-After 5), and so does every request of that class that arrives from now on, so that
  // one already on its way cannot slip in after the queue was emptied and hold the drain.
  // Leases already handed out are not affected. A class stays closed for the fleet's life.
  void close_class(RequestClass cls, const std::string& message) EXCLUDES(mutex_);

  std::vector<DeploymentStatus> status() const EXCLUDES(mutex_);
  // Why an instance of `deployment` is still pending in its cluster scheduler (Slurm's reason,
  // e.g. "Resources"); "" when none is.
  std::string pending_reason(const std::string& deployment) const EXCLUDES(procs_mutex_);
  std::vector<DeviceMemory> device_memory() const EXCLUDES(mutex_);
  // Admin: keep at least n instances (n <= max_instances) until the next reload.
  core::Status scale(const std::string& deployment, int n) EXCLUDES(mutex_);
  // Admin: start an instance now if none is running, ahead of the requests expected soon.
  core::Status prewarm(const std::string& deployment) EXCLUDES(mutex_);
  // Stops everything: queued requests fail, instances drain within grace.
  void shutdown(std::chrono::milliseconds grace) EXCLUDES(mutex_);

 private:
  // What one call into the core asks for, taken out of the lock to be applied.
  struct Pending {
    FleetActions actions;
    std::vector<Done> dispatch_done;          // one per actions.dispatches
    std::vector<Done> failure_done;           // one per actions.failures
    std::vector<DeploymentSpec> start_specs;  // one per actions.starts
  };
  struct Proc {
    std::string id;
    std::string address;
    std::unique_ptr<Process> process;
    bool awaiting_ready = false;  // its stdout is in the epoll set until it announces "ready"
    int empty_reads = 0;          // wakes with nothing to read (a closed stdout): watched no more
    std::chrono::steady_clock::time_point spawned_at = std::chrono::steady_clock::now();
    double load_s = -1;  // what the worker said its load took ("started load_ms=..."), when it did
    // Cluster runtimes announce where the instance is ("ready <address> [<token>]") and why
    // it waits ("pending <reason>", the scheduler's word, until ready).
    std::string deployment;
    std::string token;
    std::string pending_reason;
    std::optional<RunSpan> ran;  // "ran <start> <end>", printed before it exits
    double first_pass_s = -1;    // "warmed first_pass_ms=.. rows=..", after its first pass
    int first_pass_rows = 0;
  };
  enum class Announcement { kOther, kReady, kRetiring, kWarmed };
  static Announcement read_announcement(const std::string& line, Proc& proc);


  void wake() EXCLUDES(mutex_);  // the control thread runs at once
  double now() const;  // seconds on the monotonic clock since construction
  // Moves the callbacks and specs the actions need into `p`.
  void collect_locked(Pending& p) REQUIRES(mutex_);
  Done take_waiting_locked(uint64_t ticket) REQUIRES(mutex_);  // the callback of a ticket, removed
  // Applies the actions; may call into the core again.
  void apply(Pending& p) EXCLUDES(mutex_, procs_mutex_);
  void start(const StartAction& a, const DeploymentSpec& spec) EXCLUDES(mutex_, procs_mutex_);
  void run_probe(const ProbeAction& a) EXCLUDES(mutex_, procs_mutex_);
  void run_sleep(const SleepAction& a) EXCLUDES(mutex_, procs_mutex_);
  // Runs `fn` on a thread of its own, counted in probes_running_ so that shutdown waits for it.
  void detach_counted(std::function<void()> fn) REQUIRES(procs_mutex_);
  void loop() EXCLUDES(mutex_, procs_mutex_);
  // The watcher thread: waits on the instances' pidfds and wakes the control thread on an exit.
  void watch_exits() EXCLUDES(mutex_, procs_mutex_);
  void save_policy_states() EXCLUDES(mutex_);

  std::string run_dir_;
  Probe probe_;
  FleetEvents events_;
  const std::chrono::steady_clock::time_point epoch_;

  // Held only while the core decides: never around I/O, process calls or callbacks.
  mutable core::Mutex mutex_;
  core::CondVar wake_;  // the control thread's tick, woken early by new work
  FleetCore core_ GUARDED_BY(mutex_);
  std::unordered_map<uint64_t, Done> waiting_ GUARDED_BY(mutex_);  // ticket -> its callback
  uint64_t next_ticket_ GUARDED_BY(mutex_) = 1;
  bool stop_ GUARDED_BY(mutex_) = false;
  std::map<RequestClass, std::string> closed_ GUARDED_BY(mutex_);  // class -> why its requests fail
  // New work or an exit since the control thread last looked: it runs again without waiting
  // (a notify while it was busy is not lost).
  bool woken_ GUARDED_BY(mutex_) = false;

  // Never held together with mutex_; held only for map operations and signals (no waiting).
  mutable core::Mutex procs_mutex_;
  std::unordered_map<InstanceKey, Proc> procs_ GUARDED_BY(procs_mutex_);
  int probes_running_ GUARDED_BY(procs_mutex_) = 0;
  core::CondVar probes_done_;  // with procs_mutex_

  const std::chrono::milliseconds tick_;
  // The watcher's epoll set (each instance's pidfd, one-shot, keyed by InstanceKey; 0 is
  // stop_fd_, an eventfd written at shutdown). -1 when epoll is unavailable.
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  std::thread watcher_;

  // Control thread only.
  std::chrono::steady_clock::time_point last_heartbeat_;
  std::chrono::steady_clock::time_point last_policy_save_;
  std::thread thread_;
};

}  // namespace zs::platform
