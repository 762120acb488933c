#pragma once
// The fleet: every deployment's instances on this node and the requests waiting for them.
// A request asks for a slot on an instance of its deployment (acquire); when none is free
// it waits in the deployment's bounded queue, and when no instance can take it one is
// started (a cold start) — requests are never dropped while one starts. Idle instances stop
// after their keep-alive; crashed ones are restarted with back-off while there is demand.
// Memory per device is accounted by Placement; an idle instance of another deployment is
// stopped to make room for a requested one. One control thread makes every decision.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "platform/autoscale/scaling_policy.h"
#include "platform/config/config.h"
#include "platform/instance/process.h"
#include "platform/placement/placement.h"

namespace zs::platform {

struct DeploymentSpec {
  std::string name;
  // argv of a new instance; {address} of a builtin worker is a unix socket, a command
  // runtime gets a loopback port.
  std::function<core::Result<std::vector<std::string>>(const std::string& address, int port)> command;
  bool uses_unix_socket = true;  // builtin workers listen on a unix socket
  bool announces_ready = true;   // builtin workers print "ready <addr>"; others are probed
  std::map<std::string, std::string> env;
  int min_instances = 0;
  int max_instances = 1;
  int slots = 4;
  int max_queue = 64;  // per request class
  int batch_max_instances = 0;  // instances that batch demand alone may keep or start
  double keep_alive_s = 300;  // < 0: never scale in
  double request_timeout_s = 300;
  double start_timeout_s = 60;
  uint64_t memory_bytes = 0;
  std::string device = "cpu0";
  double price_per_second = 0;
  std::string policy = "concurrency";  // see platform/autoscale/scaling_policy.h
  PolicyOptions policy_options;
  double ttft_objective_s = 0;
  int priority = 0;
  std::string fingerprint;  // changes when a reload must replace running instances
};

struct Lease {
  std::string deployment;
  RequestClass cls = RequestClass::kInteractive;
  std::string instance_id;
  std::string address;
  double queue_ms = 0;        // time spent waiting for a slot
  double cold_start_ms = -1;  // >= 0 when the request waited for an instance to start
};

enum class AcquireError { kUnknownDeployment, kQueueFull, kTimeout, kNoMemory, kStartFailed, kShuttingDown };

struct AcquireFailure {
  AcquireError error;
  std::string message;
  double retry_after_s = 1;
};

struct DeploymentStatus {
  std::string name;
  int instances_ready = 0;
  int instances_starting = 0;
  int instances_draining = 0;
  int queued = 0;  // both classes
  int in_flight = 0;
  int batch_queued = 0;
  int batch_in_flight = 0;
  double starting_for_s = 0;  // the oldest start in progress
  uint64_t cold_starts = 0;
  uint64_t crashes = 0;
  std::string state() const;  // "idle" (scaled to zero), "starting", "ready"
};

enum class InstancePhase { kStarting, kReady, kIdle, kDraining };

struct FleetEvents {
  std::function<void(const std::string& instance_id, const DeploymentSpec&, bool for_request)> instance_started;
  // ready (serving), idle (ready, nothing in flight), draining; start_s is set on the first ready.
  std::function<void(const std::string& instance_id, InstancePhase phase, double start_s)> instance_phase;
  std::function<void(const std::string& instance_id)> instance_stopped;
  std::function<void()> heartbeat;  // every few seconds
  // Every scaling decision (scale_out, scale_in, prewarm, evict, restart) with its reason;
  // the fleet also logs it as one structured line.
  std::function<void(const std::string& deployment, const std::string& action, const std::string& reason)> decision;
  // What policies learned, kept across restarts: loaded when a deployment is set up, saved
  // every minute and at shutdown.
  std::function<std::optional<std::string>(const std::string& deployment, const std::string& policy)> load_policy_state;
  std::function<void(const std::string& deployment, const std::string& policy, const std::string& state)>
      save_policy_state;
};

struct DeviceMemory {
  std::string device;
  uint64_t used = 0;
  uint64_t capacity = 0;
};

class Fleet {
 public:
  using Probe = std::function<bool(const std::string& address)>;  // GET /health answered 200
  using Done = std::function<void(const Lease*, const AcquireFailure*)>;

  Fleet(std::vector<DeviceConfig> devices, std::string run_dir, Probe probe, FleetEvents events = {});
  ~Fleet();

  // Sets the deployments (at start and on reload). New ones are added; removed ones drain;
  // changed ones (fingerprint) drain their instances and start fresh ones on demand.
  void set_deployments(std::vector<DeploymentSpec> specs);
  bool has_deployment(const std::string& name) const;
  std::vector<std::string> deployment_names() const;

  // Asks for a slot. done is called exactly once (on the control thread, or inline for an
  // immediate failure), unless cancel() removes the ticket first. Interactive requests go
  // before batch ones and may use slots that batch requests hold (the worker pauses those);
  // batch requests take only free slots. Within a class, higher `order` goes first.
  uint64_t acquire(const std::string& deployment, RequestClass cls, Done done, int order = 0);
  void cancel(uint64_t ticket);
  // The request that held the lease finished; instance_failed when the instance did not answer.
  void release(const Lease& lease, bool instance_failed = false);
  // A time to first token seen by the gateway, for policies with a latency objective.
  void observe_ttft(const std::string& deployment, double seconds);

  // Fails the requests of one class still waiting for a slot (at shutdown: batch work that
  // has not started gives way at once instead of holding the drain).
  void fail_waiting(RequestClass cls, const std::string& message);

  std::vector<DeploymentStatus> status() const;
  std::vector<DeviceMemory> device_memory() const;
  // Admin: keep at least n instances (n <= max_instances) until the next reload.
  core::Status scale(const std::string& deployment, int n);
  // Admin: start an instance now if none is running, ahead of the requests expected soon.
  core::Status prewarm(const std::string& deployment);
  // Stops everything: queued requests fail, instances drain within grace.
  void shutdown(std::chrono::milliseconds grace);

 private:
  struct Instance;
  struct Waiter;
  struct Deployment;
  void loop();
  void tick();
  void run_pending();  // callbacks queued under the lock, run without it
  void save_policy_states();
  // may_evict: stop idle instances of other deployments when memory is short.
  void start_instance(Deployment& d, bool for_request, bool may_evict);
  void stop_instance(Deployment& d, Instance& inst, const char* why);
  void dispatch(Deployment& d);
  bool reserve_or_make_room(Deployment& d, const std::string& instance_id);
  void set_phase(Instance& inst, InstancePhase phase, double start_s = 0);
  void fail_all(Deployment& d, AcquireError e, const std::string& message);
  // Removes the waiters `which` picks, answering each with `failure` (outside the lock).
  void fail_waiters(Deployment& d, const AcquireFailure& failure, const std::function<bool(const Waiter&)>& which);
  // One structured log line and the decision event.
  void record_decision(const Deployment& d, const std::string& action, const std::string& reason,
                       const std::string& inputs);

  Placement placement_;
  std::string run_dir_;
  Probe probe_;
  FleetEvents events_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, std::unique_ptr<Deployment>> deployments_;
  std::vector<std::unique_ptr<Deployment>> retired_;  // removed by reload, still draining
  uint64_t next_ticket_ = 1;
  uint64_t next_instance_ = 1;
  bool stop_ = false;
  std::vector<std::function<void()>> pending_callbacks_;  // run outside the lock
  std::chrono::steady_clock::time_point last_heartbeat_;
  std::chrono::steady_clock::time_point last_policy_save_;
  std::thread thread_;
};

}  // namespace zs::platform
