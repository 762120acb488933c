#include "sim/simulator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <queue>
#include <thread>
#include <unordered_map>

#include "platform/fleet/fleet_core.h"
#include "sim/baseline.h"
#include "sim/random.h"

namespace zs::sim {
namespace {

using platform::FleetActions;
using platform::FleetCore;
using platform::InstanceKey;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kReactS = 0.02;   // the Fleet's control tick
constexpr double kTickS = 2;       // policy tick while a deployment is active ...
constexpr double kTickMaxS = 60;   // ... backing off to this while nothing changes
constexpr double kTokenEps = 1e-6;
// Keep-alive expiries are looked at just after they pass, so that rounding cannot make an
// instance look idle for a hair less than its keep-alive.
constexpr double kExpiryEpsS = 1e-6;

enum class EventKind : uint8_t { kReady, kWake, kDecide };

struct Event {
  double t;
  uint64_t seq;  // unique; also the event's identity, so that superseded events are skipped
  uint32_t target;
  EventKind kind;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

// A prompt in an instance's prefill queue: the engine sees it once its request's overhead
// (ServiceProfile::request_overhead_s) has passed.
struct Active {
  uint32_t request;
  double join_at;  // when the engine sees it
  double left;     // prompt tokens left to prefill
};

struct Decoding {
  double target;  // the instance's per-sequence decode progress at which this one finishes
  uint32_t request;
  bool operator>(const Decoding& o) const { return target > o.target; }
};

// The service model of one instance; its lifecycle is the fleet core's.
struct Instance {
  InstanceKey key = 0;
  uint32_t deployment = 0;
  bool live = false;
  double started = 0;
  double busy_since = 0;
  int in_flight = 0;
  std::deque<Active> prefill;  // by join_at; the front is the one being prefilled
  std::vector<Decoding> decoding;  // min-heap on target
  double progress = 0;   // tokens each decoding sequence has produced since the instance started
  double last_update = 0;
  uint64_t ready_seq = 0;
  uint64_t wake_seq = 0;
  bool asleep = false;
  double asleep_since = 0;
  double slept = 0;  // seconds asleep so far (billed at the sleep price)
};

// When the simulator shows a deployment to the fleet core (the daemon's tick would matter).
struct Dep {
  const SimDeployment* spec = nullptr;
  double keep_alive_s = 300;
  int live = 0;
  int peak_live = 0;
  double decide_at = kInf;
  uint64_t decide_seq = 0;
  double last_decide = -kInf;
  double backoff = kTickS;
  double anchor = 0;  // the policies' evaluation grid restarts at a cold start (see grid_after)
  bool sleeps = false;  // its instances may sleep (sleep_after >= 0)
  uint64_t last_summary = ~0ull;
};

class Simulation {
 public:
  Simulation(const Workload& w, const RunOptions& options) : w_(w), options_(options) {}

  core::Status run(RunResult& r) {
    r.label = options_.spec.label;
    r.policy = options_.spec.policy;
    r.duration_s = w_.duration_s;
    ZS_RETURN_IF_ERROR(setup());
    const auto wall0 = std::chrono::steady_clock::now();
    // Every deployment is asked once at the start, so that min_instances come up.
    for (uint32_t i = 0; i < deps_.size(); ++i) want_decide(i, 0);
    const auto& reqs = w_.requests;
    size_t next = 0;
    for (;;) {
      const double t_arrival = next < reqs.size() ? reqs[next].arrival_s : kInf;
      const double t_event = heap_.empty() ? kInf : heap_.top().t;
      // Events first at equal times: an instance that is ready at t serves a request arriving at t.
      if (t_arrival == kInf && t_event == kInf) break;
      if (t_arrival < t_event) {
        now_ = t_arrival;
        arrive(static_cast<uint32_t>(next++));
        continue;
      }
      // Past the end with nothing left to finish: stop (ticks would run forever).
      if (t_event > w_.duration_s && outstanding_ == 0) break;
      const Event e = heap_.top();
      heap_.pop();
      now_ = e.t;
      ++events_;
      handle(e);
    }
    finish(r);
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    return core::Status::ok();
  }

 private:
  core::Status setup() {
    deps_.resize(w_.deployments.size());
    dev_used_.assign(w_.devices.size(), 0);
    dev_last_.assign(w_.devices.size(), 0);
    dev_area_.assign(w_.devices.size(), 0);
    bucket_s_ = w_.duration_s / options_.series_buckets;
    series_.assign(options_.series_buckets, 0);
    const auto& spec = options_.spec;
    std::vector<platform::DeploymentSpec> specs;
    std::vector<int> always_on(deps_.size(), 1);
    for (size_t i = 0; i < deps_.size(); ++i) {
      Dep& d = deps_[i];
      d.spec = &w_.deployments[i];
      const auto& c = d.spec->config;
      platform::DeploymentSpec s =
          platform::scheduling_spec(c, d.spec->memory_bytes, w_.devices[d.spec->device].price_per_second);
      s.min_instances = spec.min_instances.value_or(c.min_instances);
      s.max_instances = std::max(s.min_instances, spec.max_instances.value_or(c.max_instances));
      s.keep_alive_s = spec.keep_alive_s.value_or(c.keep_alive_s);
      s.sleep_after_s = spec.sleep_after_s.value_or(s.sleep_after_s);
      s.sleep_price_per_second = w_.devices[d.spec->device].sleep_price_per_second;
      if (spec.always_on()) {
        const int n = i < options_.always_on_instances.size() ? options_.always_on_instances[i] : 1;
        always_on[i] = n;
        s.policy = kAlwaysOn;
        s.min_instances = s.max_instances = n;
        s.keep_alive_s = -1;
        s.sleep_after_s = -1;  // provisioned for the peak, always awake
      } else {
        s.policy = spec.policy;
        s.policy_options.target_concurrency = spec.target_concurrency.value_or(s.policy_options.target_concurrency);
        auto p = platform::make_scaling_policy(s.policy, s.policy_options);
        if (!p) return p.status();
      }
      d.keep_alive_s = s.keep_alive_s;
      d.sleeps = s.sleep_after_s >= 0;
      specs.push_back(std::move(s));
    }
    platform::FleetCoreOptions o;
    o.devices = w_.devices;
    o.wall_clock_offset_s = w_.epoch_s;  // policies that read the time of day see the trace's own clock
    o.health_check_s = 0;                // the service model has no failing instances
    o.explain = false;
    o.phases = false;
    o.make_policy = [always_on = std::move(always_on), this](const platform::DeploymentSpec& s)
        -> core::Result<std::unique_ptr<platform::ScalingPolicy>> {
      if (s.policy == kAlwaysOn) {
        return std::unique_ptr<platform::ScalingPolicy>(std::make_unique<AlwaysOnPolicy>(always_on[index_of(s.name)]));
      }
      return platform::make_scaling_policy(s.policy, s.policy_options);
    };
    for (size_t i = 0; i < specs.size(); ++i) names_[specs[i].name] = static_cast<int>(i);
    core_ = std::make_unique<FleetCore>(std::move(o));
    FleetActions& a = actions(0);
    core_->set_deployments(std::move(specs), 0, a);
    return core::Status::ok();
  }

  int index_of(const std::string& name) const { return names_.at(name); }

  // One FleetActions per nesting level: applying actions feeds events back into the core.
  FleetActions& actions(size_t depth) {
    while (action_stack_.size() <= depth) action_stack_.push_back(std::make_unique<FleetActions>());
    action_stack_[depth]->clear();
    return *action_stack_[depth];
  }
  struct Level {
    explicit Level(Simulation& s) : sim(s), a(s.actions(s.depth_++)) {}
    ~Level() { --sim.depth_; }
    Simulation& sim;
    FleetActions& a;
  };

  void push(double t, EventKind kind, uint32_t target, uint64_t& seq_out) {
    seq_out = ++seq_;
    heap_.push({t, seq_out, target, kind});
  }

  void want_decide(uint32_t dep, double t) {
    Dep& d = deps_[dep];
    if (t >= d.decide_at) return;
    d.decide_at = t;
    push(t, EventKind::kDecide, dep, d.decide_seq);
  }

  // Policies evaluate on their own cadence (PolicyOptions::evaluation_interval_s) and the Fleet
  // shows them every 20 ms, so evaluations fall on a grid that restarts when a request finds
  // no instance. Ticks and keep-alive looks land on that grid, so that scale-in happens when
  // it would in the daemon and not whenever the simulator happens to look.
  double grid_after(const Dep& d, double t) const {
    const double k = std::ceil((t - d.anchor) / eval_interval_s_ - 1e-9);
    return d.anchor + std::max(0.0, k) * eval_interval_s_ + kReactS / 2;
  }

  // A keep-alive expiring at `expiry`: looks at the grid point before it (an evaluation that
  // policies with a cadence make there), at it (policies without one stop at the Fleet's next
  // tick: half a tick late on average) and after.
  double next_expiry_look(const Dep& d, double expiry) const {
    const double after = grid_after(d, expiry);
    for (double c : {after - eval_interval_s_, expiry + kReactS / 2, after})
      if (c > now_ + 1e-9) return c;
    return kInf;
  }

  void handle(const Event& e) {
    switch (e.kind) {
      case EventKind::kDecide: {
        Dep& d = deps_[e.target];
        if (d.decide_seq != e.seq) return;
        d.decide_at = kInf;
        decide(e.target);
        return;
      }
      case EventKind::kReady: {
        Instance& inst = *pool_[e.target];
        if (!inst.live || inst.ready_seq != e.seq) return;
        Level l(*this);
        core_->instance_ready(inst.key, now_, l.a);
        apply(l.a);
        const Dep& d = deps_[inst.deployment];
        if (inst.live && inst.in_flight == 0 && d.keep_alive_s >= 0)
          want_decide(inst.deployment, next_expiry_look(d, now_ + d.keep_alive_s + kExpiryEpsS));
        return;
      }
      case EventKind::kWake: {
        Instance& inst = *pool_[e.target];
        if (!inst.live || inst.wake_seq != e.seq) return;
        service(e.target);
        return;
      }
    }
  }

  // --- the fleet core's actions ----------------------------------------------------------

  void apply(FleetActions& a) {
    for (const auto& f : a.failures) {
      --outstanding_;
      switch (f.failure.status.code()) {
        case core::StatusCode::kResourceExhausted: ++refused_queue_full_; break;
        case core::StatusCode::kInsufficientMemory: ++refused_no_memory_; break;
        default: ++refused_timeout_; break;
      }
    }
    for (const auto& s : a.starts) start(s);
    for (const auto& s : a.signals) {
      auto it = by_key_.find(s.instance);
      if (it != by_key_.end()) stop(it->second);
    }
    for (const auto& s : a.sleeps) {  // the service model's instances always can
      Instance& inst = *pool_[by_key_.at(s.instance)];
      inst.asleep = true;
      inst.asleep_since = now_;
      // Confirmed at once, as a worker would: an accelerator sleeper's memory moves to the host.
      Level l(*this);
      core_->sleep_result(s.instance, core::Status::ok(), now_, l.a);
      apply(l.a);
    }
    for (const auto& d : a.dispatches) {
      const uint32_t h = by_key_.at(d.lease.instance);
      Instance& inst = *pool_[h];
      queue_wait_.push_back(static_cast<float>(d.lease.queue_ms / 1000));
      if (d.lease.cold_start_ms >= 0) ++cold_requests_;
      advance(inst);
      if (inst.in_flight++ == 0) inst.busy_since = now_;
      enqueue_prompt(inst, static_cast<uint32_t>(d.tag));
      if (d.lease.woke) {
        ++wake_requests_;
        wake_up(inst);
      }
      service(h);
    }
  }

  // --- requests --------------------------------------------------------------------------

  void arrive(uint32_t req) {
    const SimRequest& q = w_.requests[req];
    const uint32_t dep = q.deployment;
    Dep& d = deps_[dep];
    ++requests_;
    ++outstanding_;
    const bool was_idle = core_->in_flight(dep) == 0 && core_->queued(dep) == 0;
    {
      Level l(*this);
      core_->acquire(static_cast<int>(dep), platform::RequestClass::kInteractive, 0, req, now_, l.a);
      apply(l.a);
    }
    const bool waiting = core_->queued(dep) > 0;
    if (core_->live(dep) == 0 && waiting)
      want_decide(dep, now_);  // a cold start: a request that must wait wakes the Fleet's tick at once
    else if (waiting || was_idle)
      want_decide(dep, std::min(now_ + kTickS / 4, grid_after(d, now_)));
    else
      want_decide(dep, grid_after(d, std::max(now_, d.last_decide + kTickS)));
  }

  // A request dispatched to an instance: its prompt joins the prefill queue after the request's
  // overhead, which requests pay side by side. The queue stays ordered by join time; an entry
  // never goes before a head that has started (its join time is past, the new one's is not).
  void enqueue_prompt(Instance& inst, uint32_t req) {
    const ServiceProfile& p = deps_[inst.deployment].spec->profile;
    const double overhead = p.request_overhead_s.at(even_quantile(req));
    const Active a{req, now_ + overhead, static_cast<double>(w_.requests[req].prompt_tokens)};
    auto at = inst.prefill.end();
    while (at != inst.prefill.begin() && std::prev(at)->join_at > a.join_at) --at;
    inst.prefill.insert(at, a);
  }

  // A sleeping instance woken by the request at the head of its prefill queue: the wake delays
  // that prompt by the profile's wake time.
  void wake_up(Instance& inst) {
    if (!inst.asleep) return;
    inst.asleep = false;
    inst.slept += clip(now_) - clip(inst.asleep_since);
    const ServiceProfile& p = deps_[inst.deployment].spec->profile;
    inst.prefill.front().left += p.wake_s * p.prefill_tokens_per_s;
  }

  // Brings an instance's progress up to now.
  void advance(Instance& inst) {
    const double dt = now_ - inst.last_update;
    if (dt <= 0) return;
    const ServiceProfile& p = deps_[inst.deployment].spec->profile;
    if (!inst.decoding.empty()) {
      const int b = static_cast<int>(inst.decoding.size());
      inst.progress += p.decode_rate(b) / b * dt;
    }
    if (!inst.prefill.empty()) {
      Active& head = inst.prefill.front();
      const double from = std::max(inst.last_update, head.join_at);
      if (now_ > from) head.left -= p.prefill_tokens_per_s * (now_ - from);
    }
    inst.last_update = now_;
  }

  // Completes what is due on an instance now, schedules its next completion, and hands the
  // freed slots back to the fleet core.
  void service(uint32_t h) {
    Instance& inst = *pool_[h];
    advance(inst);
    const uint32_t dep = inst.deployment;
    Dep& d = deps_[dep];
    const ServiceProfile& p = d.spec->profile;
    int freed = 0;
    for (;;) {
      if (!inst.prefill.empty() && inst.prefill.front().left <= kTokenEps && inst.prefill.front().join_at <= now_) {
        const Active a = inst.prefill.front();
        inst.prefill.pop_front();
        const SimRequest& q = w_.requests[a.request];
        const double ttft = now_ - q.arrival_s;
        ttft_.push_back(static_cast<float>(ttft));
        if (d.spec->config.ttft_objective_s > 0) core_->observe_ttft(static_cast<int>(dep), ttft, now_);
        if (q.output_tokens <= 1) {
          ++freed;
        } else {
          inst.decoding.push_back({inst.progress + (q.output_tokens - 1), a.request});
          std::push_heap(inst.decoding.begin(), inst.decoding.end(), std::greater<>());
        }
        continue;
      }
      if (!inst.decoding.empty() && inst.decoding.front().target <= inst.progress + kTokenEps) {
        std::pop_heap(inst.decoding.begin(), inst.decoding.end(), std::greater<>());
        inst.decoding.pop_back();
        ++freed;
        continue;
      }
      break;
    }
    double next = kInf;
    if (!inst.prefill.empty()) {
      const Active& head = inst.prefill.front();
      next = std::max(now_, head.join_at) + head.left / p.prefill_tokens_per_s;
    }
    if (!inst.decoding.empty()) {
      const int b = static_cast<int>(inst.decoding.size());
      next = std::min(next, now_ + (inst.decoding.front().target - inst.progress) / (p.decode_rate(b) / b));
    }
    if (next < kInf) push(next, EventKind::kWake, h, inst.wake_seq);
    if (freed == 0) return;
    // The last requests of a busy period: the policy sees the deployment still busy at this
    // instant, as the Fleet's 20 ms tick would have just before, so that policies timing "no
    // traffic for keep_alive" start counting here and not at an earlier, sparser look.
    if (core_->in_flight(static_cast<int>(dep)) == freed && core_->queued(static_cast<int>(dep)) == 0 && !deciding_)
      decide(dep);
    for (int k = 0; k < freed; ++k) {
      ++served_;
      --outstanding_;
      if (--inst.in_flight == 0) busy_seconds_ += clip(now_) - clip(inst.busy_since);
      Level l(*this);
      core_->release(inst.key, platform::RequestClass::kInteractive, false, now_, l.a);
      apply(l.a);
    }
    if (inst.live && inst.in_flight == 0 && d.keep_alive_s >= 0)
      want_decide(dep, next_expiry_look(d, now_ + d.keep_alive_s + kExpiryEpsS));
    // The Fleet's next tick puts it to sleep when the policy says so now, else at sleep_after.
    if (inst.live && inst.in_flight == 0 && d.sleeps) {
      want_decide(dep, now_ + kReactS);
      want_decide(dep, core_->next_sleep(static_cast<int>(dep)) + kExpiryEpsS);
    }
  }

  // --- instances -------------------------------------------------------------------------

  double clip(double t) const { return std::min(t, w_.duration_s); }

  void count_live(int delta) {
    // Area under the live-instance curve, per plot bucket.
    double t0 = clip(series_last_);
    const double t1 = clip(now_);
    if (live_total_ > 0 && t0 < t1) {
      // Buckets are walked by index: t0 / bucket_s_ can round back into the bucket just left.
      size_t b = std::min(series_.size() - 1, static_cast<size_t>(t0 / bucket_s_));
      while (t0 < t1) {
        const double end = b + 1 >= series_.size() ? t1 : std::min(t1, (b + 1) * bucket_s_);
        series_[b] += live_total_ * (end - t0);
        t0 = end;
        ++b;
      }
    }
    series_last_ = now_;
    live_total_ += delta;
    peak_total_ = std::max(peak_total_, live_total_);
  }

  void account_device(uint32_t dev, int64_t delta_bytes) {
    dev_area_[dev] += static_cast<double>(dev_used_[dev]) * (clip(now_) - clip(dev_last_[dev]));
    dev_last_[dev] = now_;
    dev_used_[dev] = static_cast<uint64_t>(static_cast<int64_t>(dev_used_[dev]) + delta_bytes);
  }

  uint32_t new_handle() {
    if (!free_.empty()) {
      const uint32_t h = free_.back();
      free_.pop_back();
      return h;
    }
    pool_.push_back(std::make_unique<Instance>());
    return static_cast<uint32_t>(pool_.size() - 1);
  }

  void start(const platform::StartAction& s) {
    const uint32_t dep = static_cast<uint32_t>(s.deployment);
    Dep& d = deps_[dep];
    const uint32_t h = new_handle();
    Instance& inst = *pool_[h];
    inst = Instance();
    inst.key = s.instance;
    inst.deployment = dep;
    inst.live = true;
    inst.started = inst.last_update = now_;
    by_key_[s.instance] = h;
    d.peak_live = std::max(d.peak_live, ++d.live);
    ++instance_starts_;
    if (s.for_request) ++cold_starts_;
    account_device(d.spec->device, static_cast<int64_t>(d.spec->memory_bytes));
    count_live(+1);
    // The always-on baseline is provisioned before the trace begins: warm at time 0.
    // Each start draws its cold start (by its number: the same draws every run).
    const double cold_s = d.spec->profile.cold_start_s.at(even_quantile(instance_starts_));
    push(options_.spec.always_on() && now_ == 0 ? now_ : now_ + cold_s, EventKind::kReady, h, inst.ready_seq);
  }

  // The instance exits (the service model's instances exit at once when asked to stop).
  void stop(uint32_t h) {
    Instance& inst = *pool_[h];
    Dep& d = deps_[inst.deployment];
    by_key_.erase(inst.key);
    account_device(d.spec->device, -static_cast<int64_t>(d.spec->memory_bytes));
    count_live(-1);
    --d.live;
    // Billed until the exit is seen (the profile's stop_s), except at the end of the run.
    const double billed = clip(finishing_ ? now_ : now_ + d.spec->profile.stop_s) - clip(inst.started);
    if (inst.asleep) inst.slept += clip(now_) - clip(inst.asleep_since);
    instance_seconds_ += billed;
    sleep_seconds_ += inst.slept;
    const auto& dev = w_.devices[d.spec->device];
    cost_ += billed * dev.price_per_second - inst.slept * (dev.price_per_second - dev.sleep_price_per_second);
    // Only a kill (a start that timed out) stops an instance with work: that work is lost.
    outstanding_ -= inst.in_flight;
    refused_timeout_ += inst.in_flight;
    if (inst.in_flight > 0) busy_seconds_ += clip(now_) - clip(inst.busy_since);
    inst.live = false;
    inst.in_flight = 0;
    inst.prefill.clear();
    inst.decoding.clear();
    free_.push_back(h);
    Level l(*this);
    core_->instance_exited(inst.key, 0, now_, l.a);
    apply(l.a);
  }

  // --- the policy ------------------------------------------------------------------------

  void decide(uint32_t dep) {
    deciding_ = true;
    decide_once(dep);
    deciding_ = false;
  }

  void decide_once(uint32_t dep) {
    Dep& d = deps_[dep];
    const int i = static_cast<int>(dep);
    d.last_decide = now_;
    ++decisions_;
    const int queued = core_->queued(i), live = core_->live(i);
    const uint64_t summary = (static_cast<uint64_t>(live) << 48) ^ (static_cast<uint64_t>(core_->ready(i)) << 32) ^
                             (static_cast<uint64_t>(queued) << 16) ^ static_cast<uint64_t>(core_->in_flight(i)) ^
                             (core_->arrivals_pending(i) > 0 ? 1ull << 63 : 0);
    if (live == 0 && queued > 0) d.anchor = now_;  // policies evaluate a cold start at once
    FleetCore::Evaluation e;
    {
      Level l(*this);
      e = core_->evaluate(i, now_, l.a);
      apply(l.a);
    }
    // When to look again (also when the policy asked: a pre-warm or a window's end).
    const int queued_after = core_->queued(i);
    const bool active = core_->live(i) > 0 || queued_after > 0;
    if (e.acted || summary != d.last_summary) d.backoff = kTickS;
    else d.backoff = std::min(d.backoff * 4, kTickMaxS);
    d.last_summary = summary;
    double next = active ? grid_after(d, now_ + d.backoff) : now_ + options_.idle_tick_s;
    if (e.blocked || queued_after > 0) next = std::min(next, now_ + kTickS / 4);
    if (e.evicted) next = std::min(next, now_ + kReactS);  // the room frees as the evicted exit
    const double expiry = core_->next_idle_expiry(i);
    if (expiry < kInf) next = std::min(next, next_expiry_look(d, expiry + kExpiryEpsS));
    if (const double sleep = core_->next_sleep(i); sleep < kInf) next = std::min(next, std::max(now_, sleep) + kExpiryEpsS);
    if (e.revisit_at > now_) next = std::min(next, e.revisit_at + kExpiryEpsS);
    want_decide(dep, next);
  }

  // --- results ---------------------------------------------------------------------------

  static Quantiles quantiles(std::vector<float>& v) {
    Quantiles q;
    if (v.empty()) return q;
    std::sort(v.begin(), v.end());
    auto at = [&](double p) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]); };
    q.p50 = at(0.50);
    q.p95 = at(0.95);
    q.p99 = at(0.99);
    q.max = v.back();
    double s = 0;
    for (float x : v) s += x;
    q.mean = s / v.size();
    return q;
  }

  void finish(RunResult& r) {
    now_ = std::max(now_, w_.duration_s);
    for (uint32_t h = 0; h < pool_.size(); ++h) {
      Instance& inst = *pool_[h];
      if (!inst.live) continue;
      // Nothing runs past the end (the run ends when nothing is outstanding): no work is lost.
      finishing_ = true;
      stop(h);
    }
    for (size_t dev = 0; dev < w_.devices.size(); ++dev) account_device(static_cast<uint32_t>(dev), 0);
    r.requests = requests_;
    r.served = served_;
    r.refused_queue_full = refused_queue_full_;
    r.refused_timeout = refused_timeout_;
    r.refused_no_memory = refused_no_memory_;
    r.cold_requests = cold_requests_;
    r.cold_starts = cold_starts_;
    r.wake_requests = wake_requests_;
    r.sleep_seconds = sleep_seconds_;
    r.instance_starts = instance_starts_;
    r.instance_seconds = instance_seconds_;
    r.busy_seconds = busy_seconds_;
    r.cost = cost_;
    r.peak_instances = peak_total_;
    double area = 0;
    for (double a : series_) area += a;
    r.mean_instances = w_.duration_s > 0 ? area / w_.duration_s : 0;
    r.bucket_s = bucket_s_;
    for (double a : series_) r.instances_series.push_back(static_cast<float>(a / bucket_s_));
    double util = 0;
    for (size_t dev = 0; dev < w_.devices.size(); ++dev) {
      const double cap = static_cast<double>(w_.devices[dev].memory_bytes);
      if (cap > 0) util += dev_area_[dev] / (cap * w_.duration_s);
    }
    r.memory_utilisation = w_.devices.empty() ? 0 : util / w_.devices.size();
    r.ttft_s = quantiles(ttft_);
    r.queue_s = quantiles(queue_wait_);
    for (int i = 1; i <= 100 && !ttft_.empty(); ++i)
      r.ttft_cdf.push_back(ttft_[std::min(ttft_.size() - 1, static_cast<size_t>(i / 100.0 * ttft_.size()))]);
    for (const auto& d : deps_) r.peak_per_deployment.push_back(d.peak_live);
    r.decisions = decisions_;
    r.events = events_;
  }

  const Workload& w_;
  const RunOptions& options_;
  std::unique_ptr<FleetCore> core_;
  std::unordered_map<std::string, int> names_;  // deployment name -> index
  std::vector<std::unique_ptr<FleetActions>> action_stack_;
  size_t depth_ = 0;
  std::vector<Dep> deps_;
  std::vector<std::unique_ptr<Instance>> pool_;
  std::vector<uint32_t> free_;
  std::unordered_map<InstanceKey, uint32_t> by_key_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> heap_;
  uint64_t seq_ = 0;
  double now_ = 0;
  bool deciding_ = false;
  bool finishing_ = false;  // the run is over: instances stop without their stop_s
  const double eval_interval_s_ = platform::PolicyOptions{}.evaluation_interval_s;
  int64_t outstanding_ = 0;  // requests queued or in flight

  uint64_t requests_ = 0, served_ = 0, refused_queue_full_ = 0, refused_timeout_ = 0, refused_no_memory_ = 0;
  uint64_t cold_requests_ = 0, cold_starts_ = 0, instance_starts_ = 0, decisions_ = 0, events_ = 0;
  uint64_t wake_requests_ = 0;
  double instance_seconds_ = 0, busy_seconds_ = 0, sleep_seconds_ = 0, cost_ = 0;
  std::vector<float> ttft_, queue_wait_;
  int live_total_ = 0, peak_total_ = 0;
  double series_last_ = 0, bucket_s_ = 1;
  std::vector<double> series_;
  std::vector<uint64_t> dev_used_;
  std::vector<double> dev_last_, dev_area_;
};

}  // namespace

core::Result<RunResult> simulate(const Workload& workload, const RunOptions& options) {
  RunResult r;
  Simulation s(workload, options);
  ZS_RETURN_IF_ERROR(s.run(r));
  return r;
}

core::Result<std::vector<RunResult>> simulate_all(const Workload& workload, const std::vector<PolicySpec>& specs,
                                                  int jobs, double idle_tick_s) {
  std::vector<size_t> order(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) order[i] = i;
  // Longest first, so that parallel runs finish together: policies that learn from history
  // (windows, histograms, profiles) cost far more per decision than the keep-alive ones.
  auto weight = [&](size_t i) {
    const auto& p = specs[i].policy;
    return p == "predictive" ? 0 : p == "histogram" ? 1 : p == "concurrency" ? 2 : p == "hybrid" ? 3 : p == "fixed" ? 5 : specs[i].always_on() ? 6 : 4;
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return weight(a) < weight(b); });
  std::vector<RunOptions> options(specs.size());
  std::vector<core::Result<RunResult>> results(specs.size(), core::Status::error("not run"));
  // always-on is sized by the workload alone (sim/baseline.h), not by the other policies, so
  // it runs alongside them.
  std::vector<int> peak_need;
  for (const auto& s : specs)
    if (s.always_on() && peak_need.empty()) peak_need = always_on_instances(workload);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t k; (k = next.fetch_add(1)) < order.size();) {
      const size_t i = order[k];
      options[i].spec = specs[i];
      options[i].idle_tick_s = idle_tick_s;
      if (specs[i].always_on()) options[i].always_on_instances = peak_need;
      results[i] = simulate(workload, options[i]);
    }
  };
  const int n = std::max(1, std::min<int>(jobs, static_cast<int>(order.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  std::vector<RunResult> out;
  for (auto& r : results) {
    if (!r) return r.status();
    out.push_back(std::move(r.value()));
  }
  return out;
}

}  // namespace zs::sim
