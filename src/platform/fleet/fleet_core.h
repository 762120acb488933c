#pragma once
// The fleet core: every decision the fleet makes, and nothing else. Per deployment it keeps the
// queue of requests waiting for a slot (interactive before batch, then by order, then by
// arrival), the instances and their lifecycle, the scaling policy and the memory placement;
// it decides which request goes to which instance, when an instance starts, drains, is killed
// or probed, and when a request fails.
//
// It is handed the time and what happened (a request arrived or finished, an instance became
// ready, exited, failed to start, answered a probe) and returns what to do as FleetActions. It
// does no I/O, starts no thread, reads no clock and never blocks, so that the daemon's Fleet
// (platform/fleet/fleet.h: real processes and HTTP on a wall clock) and the simulator (a
// service model on a virtual clock) run the very same decisions.
//
// Contract:
// - Not thread-safe: the caller serialises every call (the Fleet holds its mutex around each,
//   the simulator has one thread). Actions are appended to the caller's FleetActions and must
//   be applied after the call returns; applying them may feed new events back in.
// - `now` is seconds on a monotonic clock, never decreasing between calls. Policies see
//   `now + wall_clock_offset_s` (the daemon: Unix time; the simulator: the trace's clock).
// - Nothing here fails: a request that cannot be served becomes a FailAction for its tag,
//   carrying why; an unknown instance key is ignored (it may already be gone).
// - Instances are named "<deployment>-<n>" with n unique within one core.
//
// Lifecycle of an instance: kStarting -> kReady <-> kSleeping -> kDraining -> gone (on
// instance_exited). An instance whose runtime announces its end (instance_retiring) is
// replaced before it: drained once its replacement is ready. A ready instance with nothing in flight is reported as the phase kIdle.
// An idle instance of a deployment that may sleep (sleep_after >= 0) is put to sleep after
// sleep_after of idleness, or when its policy says so (ScalingDecision::sleep_after_s): it
// keeps its process, weights and memory reservation but gives back its cache and threads. A
// request for it wakes it (the dispatch itself: the worker wakes when the request arrives);
// dispatch counts it as an idle instance, after idle awake ones. It stops after keep_alive
// like an idle one, and is the first to go when its device needs room. On an accelerator
// (a device whose kind is not "cpu"), a sleeper keeps only a host copy of its weights: once
// its sleep is confirmed (sleep_result ok) its reservation moves to the host (the first "cpu"
// device, where it fits; else it stays), freeing the accelerator for others, and moves back
// when a request wakes it. When the accelerator has no room for it then, idle instances there
// are evicted as for a start and the request waits (the next evaluation tries again);
// dispatch prefers any instance that can take the request meanwhile. Crashes (an exit not
// asked for, three failed health checks in a row, a start that timed out) count against the deployment and
// back its next start off exponentially (1 s .. 30 s); three in a row while starting fail the
// requests waiting for it.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "platform/autoscale/scaling_policy.h"
#include "platform/config/config.h"
#include "platform/instance/instance_phase.h"
#include "platform/placement/placement.h"

namespace zs::platform {

// A deployment as the fleet runs it. The scheduling fields are the core's; `command`, `env`,
// `uses_unix_socket` and `announces_ready` are for the runtime that starts instances.
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
  double sleep_after_s = -1;  // idle instances sleep after this long; < 0: they never sleep
  double request_timeout_s = 300;
  double start_timeout_s = 60;
  uint64_t memory_bytes = 0;
  std::string device = "cpu0";
  double price_per_second = 0;
  double sleep_price_per_second = 0;  // what the device costs while the instance sleeps
  std::string policy = kDefaultScalingPolicy;  // see platform/autoscale/scaling_policy.h
  PolicyOptions policy_options;
  double ttft_objective_s = 0;
  int priority = 0;
  std::string fingerprint;  // changes when a reload must replace running instances
  std::string policy_state;  // learned policy state to restore (from a previous run); "" = fresh
};

// The scheduling fields of a deployment from its configuration (the runtime fields are the
// caller's): the daemon and the simulator schedule a configured deployment identically.
DeploymentSpec scheduling_spec(const DeploymentConfig& config, uint64_t memory_bytes, double price_per_second);

using InstanceKey = uint64_t;


struct Lease {
  std::string deployment;
  RequestClass cls = RequestClass::kInteractive;
  std::string instance_id;
  InstanceKey instance = 0;
  std::string address;        // filled in by the runtime (the core does not know addresses)
  std::string token;          // the instance's bearer token, sent to it by the gateway; "" = none (runtime's)
  double queue_ms = 0;        // time spent waiting for a slot
  double cold_start_ms = -1;  // >= 0 when the request waited for an instance to start
  bool woke = false;          // its instance was sleeping: the request wakes it
};

// How a request found its instance, for the X-Zeroserve-Start header and the metrics:
// "cold" (it waited for a start), "wake" (it woke a sleeping instance) or "warm".
const char* start_kind(const Lease& lease);

// Why a request will not be served, by code: not_found (unknown or removed deployment),
// resource_exhausted (its queue is full), deadline_exceeded (request_timeout),
// insufficient_memory (the model cannot fit its device), unavailable (instances fail to start,
// or shutting down).
struct AcquireFailure {
  core::Status status;
  double retry_after_s = 1;
};

// One instance as status() saw it, for the console and the admin API. `phase` is
// instance_phase_name() of its phase: readers show it as a string, so a phase added later
// reaches them without a change there.
struct InstanceStatus {
  std::string id;
  std::string phase;
  double age_s = 0;       // since it was started
  double idle_for_s = 0;  // in the idle phase: since its last request ended; 0 otherwise
};

struct DeploymentStatus {
  std::string name;
  std::vector<InstanceStatus> instances;  // oldest first
  int min_instances = 0;
  int max_instances = 0;
  double keep_alive_s = 0;  // < 0: never scales in
  int instances_ready = 0;
  int instances_starting = 0;
  int instances_draining = 0;
  int instances_sleeping = 0;  // not counted in instances_ready
  int queued = 0;  // both classes
  int in_flight = 0;
  int batch_queued = 0;
  int batch_in_flight = 0;
  double starting_for_s = 0;  // the oldest start in progress
  // Why a start waits, in a cluster scheduler's words ("Resources", "Configuring"); empty
  // otherwise. Filled in by the daemon's Fleet (the runtime knows it), never by the core.
  std::string pending_reason;
  uint64_t cold_starts = 0;
  uint64_t wakes = 0;  // requests that woke a sleeping instance
  uint64_t crashes = 0;
  std::string state() const;  // "idle" (scaled to zero), "starting", "sleeping", "ready"
};

struct DeviceMemory {
  std::string device;
  uint64_t used = 0;
  uint64_t capacity = 0;
};

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

struct StartAction {  // start an instance; report instance_ready, instance_exited or start_failed
  InstanceKey instance;
  std::string id;
  int deployment;  // index (deployment_index)
  bool for_request;  // a cold start: requests are waiting for it
};
struct SignalAction {  // ask the instance to stop (it drains, then exits) or kill it now
  InstanceKey instance;
  bool kill;
};
struct SleepAction {  // put an idle instance to sleep; report sleep_result
  InstanceKey instance;
};
struct ProbeAction {  // check the instance's health; report probe_result
  InstanceKey instance;
  bool readiness;  // a starting instance that does not announce itself
};
struct DispatchAction {  // the request `tag` may use this instance now
  uint64_t tag;
  Lease lease;
};
struct FailAction {  // the request `tag` will not be served
  uint64_t tag;
  AcquireFailure failure;
};
struct PhaseAction {
  InstanceKey instance;
  std::string id;
  InstancePhase phase;
  double start_s;  // seconds from start to ready, on the first kReady/kIdle; else 0
};
struct DecisionAction {  // a scaling decision, for the log and the decision metric
  std::string deployment;
  std::string policy;
  std::string action;  // "policy" (what the policy said), scale_out, scale_in, prewarm, evict
  std::string reason;
  std::string inputs;  // what the decision saw, as key=value pairs
};

struct FleetActions {
  std::vector<StartAction> starts;
  std::vector<SignalAction> signals;
  std::vector<SleepAction> sleeps;
  std::vector<ProbeAction> probes;
  std::vector<DispatchAction> dispatches;
  std::vector<FailAction> failures;
  std::vector<PhaseAction> phases;
  std::vector<DecisionAction> decisions;
  std::vector<std::string> notes;   // what happened to instances, for the log (info)
  std::vector<std::string> errors;  // what went wrong with instances, for the log (error)

  void clear();
  bool empty() const;
};

struct FleetCoreOptions {
  std::vector<DeviceConfig> devices;
  double wall_clock_offset_s = 0;  // policies see now + this
  double health_check_s = 5;       // between liveness probes of a ready instance; 0: none
  double drain_grace_s = 30;       // a draining instance is killed after this
  bool explain = true;             // DecisionActions carry formatted inputs (the simulator skips them)
  bool phases = true;              // PhaseActions are reported
  // Makes a deployment's policy; the default is make_scaling_policy (falling back to the
  // default policy for a name it does not know).
  std::function<core::Result<std::unique_ptr<ScalingPolicy>>(const DeploymentSpec&)> make_policy;
};

class FleetCore {
 public:
  static constexpr double kNever = std::numeric_limits<double>::infinity();

  explicit FleetCore(FleetCoreOptions options);
  ~FleetCore();
  FleetCore(const FleetCore&) = delete;
  FleetCore& operator=(const FleetCore&) = delete;

  // Deployments (at start and on reload). New ones are added; removed ones fail their queued
  // requests and drain; changed ones (fingerprint) drain their instances. Indices of existing
  // deployments stay valid.
  void set_deployments(std::vector<DeploymentSpec> specs, double now, FleetActions& out);
  int deployment_index(const std::string& name) const;  // -1 when unknown or removed
  std::vector<std::string> deployment_names() const;
  const DeploymentSpec& spec(int deployment) const;

  // -- events --------------------------------------------------------------------------------
  // A request for a slot; answered by a DispatchAction or a FailAction for `tag` (at once or
  // later). Tags are the caller's and must be unique among waiting requests. `waiting_since`
  // (<= now) is when a request sent again (its instance could not be reached) first asked:
  // its request_timeout counts from then; by default from now.
  void acquire(int deployment, RequestClass cls, int order, uint64_t tag, double now, FleetActions& out,
               double waiting_since = kNever);
  bool cancel(uint64_t tag);  // removes a waiting request; false when it is not waiting
  // The request on `instance` finished; failed when the instance did not answer (no request
  // goes to it until it passes a probe or exits).
  void release(InstanceKey instance, RequestClass cls, bool failed, double now, FleetActions& out);
  void instance_ready(InstanceKey instance, double now, FleetActions& out);
  void instance_exited(InstanceKey instance, int status, double now, FleetActions& out);
  void start_failed(InstanceKey instance, const std::string& why, double now, FleetActions& out);
  void probe_result(InstanceKey instance, bool ok, double now, FleetActions& out);
  // The instance will end by itself soon (a cluster job nearing its time limit): a
  // replacement starts at once (beyond max_instances if need be), the instance keeps serving
  // (after others) until the replacement is ready, then drains. The policy stops counting it.
  void instance_retiring(InstanceKey instance, double now, FleetActions& out);
  // What became of a SleepAction: ok, kFailedPrecondition (it was busy: it stays awake and
  // may sleep later) or another code (it cannot sleep: it is never asked again).
  void sleep_result(InstanceKey instance, const core::Status& result, double now, FleetActions& out);
  void observe_ttft(int deployment, double seconds, double now);

  // -- decisions -----------------------------------------------------------------------------
  // Every deployment: timeouts, dispatch, lifecycle deadlines, probes due, the policy, starts.
  void tick(double now, FleetActions& out);
  struct Evaluation {
    bool acted = false;    // started or stopped something
    bool blocked = false;  // wanted to start an instance that did not fit (yet)
    bool evicted = false;  // stopped others' idle instances to make room
    double revisit_at = kNever;  // the policy asked to be shown the deployment again then
  };
  // One deployment (what tick does for each); the simulator calls it at the times the
  // daemon's tick would matter.
  Evaluation evaluate(int deployment, double now, FleetActions& out);

  // -- admin ---------------------------------------------------------------------------------
  core::Status scale(const std::string& deployment, int n);  // keep at least n until reload
  core::Status prewarm(const std::string& deployment, double now);
  void fail_waiting(RequestClass cls, const AcquireFailure& failure, FleetActions& out);
  // Fails every waiting request and returns every instance still running (starting, ready or
  // draining) for the runtime to stop; the core is empty afterwards.
  std::vector<InstanceKey> shutdown(const AcquireFailure& failure, FleetActions& out);

  // -- reading -------------------------------------------------------------------------------
  std::vector<DeploymentStatus> status(double now) const;
  std::vector<DeviceMemory> device_memory() const;  // every configured device, in configuration order
  // (deployment, policy, state) of every policy with learned state.
  std::vector<std::tuple<std::string, std::string, std::string>> policy_states() const;
  std::string instance_id(InstanceKey instance) const;  // "" when unknown
  // Cheap counters for the simulator's event scheduling.
  int live(int deployment) const;    // starting or ready
  int ready(int deployment) const;  // awake and ready
  int sleeping(int deployment) const;
  int queued(int deployment) const;  // both classes
  int in_flight(int deployment) const;
  int arrivals_pending(int deployment) const;  // interactive arrivals the policy has not seen
  // When the earliest idle ready instance reaches its keep-alive; kNever when none.
  double next_idle_expiry(int deployment) const;
  // When the earliest idle awake instance reaches sleep_after; kNever when none.
  double next_sleep(int deployment) const;

 private:
  struct Instance;
  struct Waiter;
  struct Deployment;

  Deployment* find(InstanceKey instance, Instance** inst);
  void dispatch(Deployment& d, double now, FleetActions& out);
  void start_instances(Deployment& d, int n, bool for_request, bool may_evict, double now, FleetActions& out,
                       Evaluation& e);
  bool reserve_or_make_room(Deployment& d, const std::string& instance_id, double now, FleetActions& out,
                            Evaluation& e);
  void make_room(Deployment& d, const std::string& device, double now, FleetActions& out, Evaluation& e);
  void move_to_host(Instance& inst, FleetActions& out);
  bool move_back_to_device(Deployment& d, Instance& inst, double now, FleetActions& out);
  void drain(Deployment& d, Instance& inst, const std::string& why, double now, FleetActions& out);
  bool replace(Deployment& d, Instance& inst, double now, FleetActions& out);
  void crashed(Deployment& d, double now);
  void remove_instance(Deployment& d, InstanceKey key);
  void set_phase(Instance& inst, InstancePhase phase, double start_s, FleetActions& out);
  void fail_waiters(Deployment& d, const AcquireFailure& failure, FleetActions& out,
                    const std::function<bool(const Waiter&)>& which);
  void lifecycle(Deployment& d, double now, FleetActions& out);
  void put_to_sleep(Deployment& d, double sleep_after_s, double now, FleetActions& out);
  void queue_changed(Deployment& d, bool was_empty);
  void decision(const Deployment& d, const std::string& action, const std::string& reason,
                const std::string& inputs, FleetActions& out) const;

  FleetCoreOptions options_;
  Placement placement_;
  std::string host_device_;  // the first "cpu" device: where accelerator sleepers are counted
  std::vector<std::unique_ptr<Deployment>> deployments_;  // by index; removed ones stay, retired
  std::unordered_map<std::string, int> by_name_;          // current deployments only
  std::unordered_map<InstanceKey, int> owner_;            // instance -> deployment index
  std::unordered_map<std::string, int> waiting_on_device_;  // deployments with a queue, per device
  InstanceKey next_instance_ = 1;
};

}  // namespace zs::platform
