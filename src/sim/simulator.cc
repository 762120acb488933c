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

#include "platform/placement/placement.h"
#include "sim/baseline.h"

namespace zs::sim {
namespace {

using platform::DeploymentObservation;
using platform::ScalingDecision;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kReactS = 0.02;   // the Fleet's control tick: how soon a waiting request is seen
constexpr double kTickS = 2;       // policy tick while a deployment is active ...
constexpr double kTickMaxS = 60;   // ... backing off to this while nothing changes
constexpr double kTokenEps = 1e-6;
// Keep-alive expiries are looked at just after they pass, so that rounding cannot make an
// instance look idle for a hair less than its keep-alive.
constexpr double kExpiryEpsS = 1e-6;
constexpr size_t kTtftWindow = 32;  // recent TTFTs behind the observation's ttft_p95_s

enum class EventKind : uint8_t { kReady, kWake, kDecide };

struct Event {
  double t;
  uint64_t seq;  // unique; also the event's identity, so that superseded events are skipped
  uint32_t target;
  EventKind kind;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct Active {
  uint32_t request;
  bool cold;
};

struct Decoding {
  double target;  // the instance's per-sequence decode progress at which this one finishes
  uint32_t request;
  bool operator>(const Decoding& o) const { return target > o.target; }
};

struct Instance {
  std::string id;
  uint32_t deployment = 0;
  bool live = false;
  bool ready = false;
  double started = 0;
  double idle_since = 0;
  double busy_since = 0;
  int in_flight = 0;
  std::deque<Active> prefill;
  double head_left = 0;  // prompt tokens left of prefill.front()
  std::vector<Decoding> decoding;  // min-heap on target
  double progress = 0;   // tokens each decoding sequence has produced since the instance started
  double last_update = 0;
  uint64_t ready_seq = 0;
  uint64_t wake_seq = 0;
};

struct Waiting {
  uint32_t request;
  double arrival;
  bool cold;
};

struct Dep {
  const SimDeployment* spec = nullptr;
  std::unique_ptr<platform::ScalingPolicy> policy;
  int min_instances = 0;
  int max_instances = 1;
  double keep_alive_s = 300;
  std::vector<uint32_t> instances;  // live handles (starting or ready)
  int ready = 0;
  int in_flight = 0;
  std::deque<Waiting> queue;
  int arrivals = 0;
  double decide_at = kInf;
  uint64_t decide_seq = 0;
  double last_decide = -kInf;
  double backoff = kTickS;
  double anchor = 0;  // the policies' evaluation grid restarts at a cold start (see grid_after)
  uint64_t last_summary = ~0ull;
  float ttft_ring[kTtftWindow] = {};
  size_t ttft_count = 0;
  bool ttft_dirty = false;
  double ttft_p95 = 0;
  int peak_live = 0;
  uint64_t next_instance = 1;
  DeploymentObservation obs;  // reused between decisions
};

class Simulation {
 public:
  Simulation(const Workload& w, const RunOptions& options) : w_(w), options_(options), placement_(w.devices) {}

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
    for (size_t i = 0; i < deps_.size(); ++i) {
      Dep& d = deps_[i];
      d.spec = &w_.deployments[i];
      const auto& c = d.spec->config;
      d.min_instances = spec.min_instances.value_or(c.min_instances);
      d.max_instances = std::max(d.min_instances, spec.max_instances.value_or(c.max_instances));
      d.keep_alive_s = spec.keep_alive_s.value_or(c.keep_alive_s);
      if (spec.always_on()) {
        const int n = i < options_.always_on_instances.size() ? options_.always_on_instances[i] : 1;
        d.policy = std::make_unique<AlwaysOnPolicy>(n);
        d.min_instances = d.max_instances = n;
        d.keep_alive_s = -1;
      } else {
        platform::PolicyOptions po = c.autoscale.options;
        po.target_concurrency = spec.target_concurrency.value_or(po.target_concurrency);
        auto p = platform::make_scaling_policy(spec.policy, po);
        if (!p) return p.status();
        d.policy = std::move(p.value());
      }
    }
    return core::Status::ok();
  }

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
  // policies with a cadence make there), at it (policies without one stop at once) and after.
  double next_expiry_look(const Dep& d, double expiry) const {
    const double after = grid_after(d, expiry);
    for (double c : {after - eval_interval_s_, expiry, after})
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
        mark_ready(inst);
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

  // --- requests --------------------------------------------------------------------------

  void arrive(uint32_t req) {
    const SimRequest& q = w_.requests[req];
    Dep& d = deps_[q.deployment];
    ++requests_;
    ++d.arrivals;
    if (static_cast<int>(d.queue.size()) >= d.spec->config.max_queue) {
      ++refused_queue_full_;
      return;
    }
    ++outstanding_;
    const bool was_idle = d.in_flight == 0 && d.queue.empty();
    d.queue.push_back({req, q.arrival_s, d.ready == 0});
    dispatch(q.deployment);
    if (d.instances.empty() && !d.queue.empty())
      want_decide(q.deployment, now_ + kReactS);  // a cold start: the Fleet reacts at its next tick
    else if (!d.queue.empty() || was_idle)
      want_decide(q.deployment, std::min(now_ + kTickS / 4, grid_after(d, now_)));
    else
      want_decide(q.deployment, grid_after(d, std::max(now_, d.last_decide + kTickS)));
  }

  // Queued requests to ready instances with a free slot, least loaded first (as the Fleet).
  void dispatch(uint32_t dep) {
    Dep& d = deps_[dep];
    if (dispatching_) return;
    dispatching_ = true;
    const int slots = d.spec->config.slots;
    while (!d.queue.empty()) {
      uint32_t best = ~0u;
      int best_load = slots;
      for (uint32_t h : d.instances) {
        const Instance& i = *pool_[h];
        if (i.ready && i.in_flight < best_load) {
          best = h;
          best_load = i.in_flight;
        }
      }
      if (best == ~0u) break;
      const Waiting w = d.queue.front();
      d.queue.pop_front();
      queue_wait_.push_back(static_cast<float>(now_ - w.arrival));
      if (w.cold) ++cold_requests_;
      Instance& inst = *pool_[best];
      advance(inst);
      if (inst.in_flight++ == 0) inst.busy_since = now_;
      ++d.in_flight;
      inst.prefill.push_back({w.request, w.cold});
      if (inst.prefill.size() == 1) inst.head_left = w_.requests[w.request].prompt_tokens;
      service(best);
    }
    dispatching_ = false;
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
    if (!inst.prefill.empty()) inst.head_left -= p.prefill_tokens_per_s * dt;
    inst.last_update = now_;
  }

  // Completes what is due on an instance now and schedules its next completion.
  void service(uint32_t h) {
    Instance& inst = *pool_[h];
    advance(inst);
    Dep& d = deps_[inst.deployment];
    const ServiceProfile& p = d.spec->profile;
    bool freed = false;
    for (;;) {
      if (!inst.prefill.empty() && inst.head_left <= kTokenEps) {
        const Active a = inst.prefill.front();
        inst.prefill.pop_front();
        if (!inst.prefill.empty()) inst.head_left = w_.requests[inst.prefill.front().request].prompt_tokens;
        const SimRequest& q = w_.requests[a.request];
        const float ttft = static_cast<float>(now_ - q.arrival_s);
        ttft_.push_back(ttft);
        d.ttft_ring[d.ttft_count++ % kTtftWindow] = ttft;
        d.ttft_dirty = true;
        if (q.output_tokens <= 1) {
          complete(inst, d);
          freed = true;
        } else {
          inst.decoding.push_back({inst.progress + (q.output_tokens - 1), a.request});
          std::push_heap(inst.decoding.begin(), inst.decoding.end(), std::greater<>());
        }
        continue;
      }
      if (!inst.decoding.empty() && inst.decoding.front().target <= inst.progress + kTokenEps) {
        std::pop_heap(inst.decoding.begin(), inst.decoding.end(), std::greater<>());
        inst.decoding.pop_back();
        complete(inst, d);
        freed = true;
        continue;
      }
      break;
    }
    double next = kInf;
    if (!inst.prefill.empty()) next = now_ + inst.head_left / p.prefill_tokens_per_s;
    if (!inst.decoding.empty()) {
      const int b = static_cast<int>(inst.decoding.size());
      next = std::min(next, now_ + (inst.decoding.front().target - inst.progress) / (p.decode_rate(b) / b));
    }
    if (next < kInf) push(next, EventKind::kWake, h, inst.wake_seq);
    if (freed && !d.queue.empty()) dispatch(inst.deployment);
  }

  void complete(Instance& inst, Dep& d) {
    // The last request of a busy period: the policy sees the deployment still busy at this
    // instant, as the Fleet's 20 ms tick would have just before, so that policies timing
    // "no traffic for keep_alive" start counting here and not at an earlier, sparser look.
    if (d.in_flight == 1 && d.queue.empty() && !deciding_) decide(inst.deployment);
    ++served_;
    --outstanding_;
    --d.in_flight;
    if (--inst.in_flight == 0) {
      inst.idle_since = now_;
      busy_seconds_ += clip(now_) - clip(inst.busy_since);
      if (d.keep_alive_s >= 0) want_decide(inst.deployment, next_expiry_look(d, now_ + d.keep_alive_s + kExpiryEpsS));
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

  // Memory first (the Fleet's reserve_or_make_room: idle instances of deployments of no higher
  // priority, above their min_instances and with nothing queued, make room); false when it
  // does not fit yet.
  bool reserve(uint32_t dep, const std::string& id) {
    Dep& d = deps_[dep];
    const auto& device = d.spec->config.device;
    if (placement_.reserve(id, device, d.spec->memory_bytes)) return true;
    auto is_idle = [&](const std::string& other) {
      auto it = by_id_.find(other);
      if (it == by_id_.end()) return false;
      const Instance& i = *pool_[it->second];
      const Dep& o = deps_[i.deployment];
      if (i.deployment == dep || o.spec->config.priority > d.spec->config.priority || !o.queue.empty()) return false;
      if (static_cast<int>(o.instances.size()) <= o.min_instances) return false;
      return i.ready && i.in_flight == 0;
    };
    const auto victims = placement_.eviction_candidates(device, d.spec->memory_bytes, is_idle);
    if (victims.empty()) return false;
    for (const auto& v : victims) stop(by_id_.at(v));
    return static_cast<bool>(placement_.reserve(id, device, d.spec->memory_bytes));
  }

  void start(uint32_t dep, bool warm) {
    Dep& d = deps_[dep];
    std::string id = d.spec->config.name + "/" + std::to_string(d.next_instance);
    if (!reserve(dep, id)) return;
    ++d.next_instance;
    const uint32_t h = new_handle();
    Instance& inst = *pool_[h];
    inst = Instance();
    inst.id = std::move(id);
    inst.deployment = dep;
    inst.live = true;
    inst.started = inst.last_update = now_;
    by_id_[inst.id] = h;
    d.instances.push_back(h);
    d.peak_live = std::max(d.peak_live, static_cast<int>(d.instances.size()));
    ++instance_starts_;
    if (!d.queue.empty() && !warm) ++cold_starts_;
    account_device(d.spec->device, static_cast<int64_t>(d.spec->memory_bytes));
    count_live(+1);
    if (warm)
      mark_ready(inst);
    else
      push(now_ + d.spec->profile.cold_start_s, EventKind::kReady, h, inst.ready_seq);
  }

  void mark_ready(Instance& inst) {
    Dep& d = deps_[inst.deployment];
    inst.ready = true;
    inst.idle_since = now_;
    ++d.ready;
    dispatch(inst.deployment);
    if (inst.in_flight == 0 && d.keep_alive_s >= 0)
      want_decide(inst.deployment, next_expiry_look(d, now_ + d.keep_alive_s + kExpiryEpsS));
  }

  void stop(uint32_t h) {
    Instance& inst = *pool_[h];
    Dep& d = deps_[inst.deployment];
    placement_.release(inst.id);
    by_id_.erase(inst.id);
    account_device(d.spec->device, -static_cast<int64_t>(d.spec->memory_bytes));
    count_live(-1);
    instance_seconds_ += clip(now_) - clip(inst.started);
    cost_ += (clip(now_) - clip(inst.started)) * w_.devices[d.spec->device].price_per_second;
    if (inst.ready) --d.ready;
    d.instances.erase(std::find(d.instances.begin(), d.instances.end(), h));
    inst.live = false;
    inst.prefill.clear();
    inst.decoding.clear();
    free_.push_back(h);
  }

  // --- the policy ------------------------------------------------------------------------

  void decide(uint32_t dep) {
    deciding_ = true;
    decide_once(dep);
    deciding_ = false;
  }

  void decide_once(uint32_t dep) {
    Dep& d = deps_[dep];
    const auto& c = d.spec->config;
    d.last_decide = now_;
    ++decisions_;
    // Requests that waited too long (request_timeout), as the Fleet's tick.
    while (!d.queue.empty() && now_ - d.queue.front().arrival > c.request_timeout_s) {
      d.queue.pop_front();
      --outstanding_;
      ++refused_timeout_;
    }
    dispatch(dep);
    DeploymentObservation& o = d.obs;
    o.now_s = w_.epoch_s + now_;  // policies that read the time of day see the trace's own clock
    o.min_instances = d.min_instances;
    o.max_instances = d.max_instances;
    o.slots = c.slots;
    o.keep_alive_s = d.keep_alive_s;
    o.queued = static_cast<int>(d.queue.size());
    o.in_flight = d.in_flight;
    o.arrivals = d.arrivals;
    o.ttft_objective_s = c.ttft_objective_s;
    if (d.ttft_dirty) {
      const size_t n = std::min(d.ttft_count, kTtftWindow);
      float tmp[kTtftWindow];
      std::copy(d.ttft_ring, d.ttft_ring + n, tmp);
      const size_t k = std::min(n - 1, static_cast<size_t>(std::ceil(0.95 * n)) - 1);
      std::nth_element(tmp, tmp + k, tmp + n);
      d.ttft_p95 = tmp[k];
      d.ttft_dirty = false;
    }
    o.ttft_p95_s = d.ttft_p95;
    o.instances.resize(d.instances.size());
    double next_expiry = kInf;
    for (size_t i = 0; i < d.instances.size(); ++i) {
      const Instance& inst = *pool_[d.instances[i]];
      auto& io = o.instances[i];
      if (io.id != inst.id) io.id = inst.id;
      io.ready = inst.ready;
      io.in_flight = inst.in_flight;
      io.idle_for_s = inst.in_flight == 0 && inst.ready ? now_ - inst.idle_since : 0.0;
      const double expiry = inst.idle_since + d.keep_alive_s + kExpiryEpsS;
      if (inst.ready && inst.in_flight == 0 && d.keep_alive_s >= 0) next_expiry = std::min(next_expiry, next_expiry_look(d, expiry));
    }
    const uint64_t summary = (static_cast<uint64_t>(d.instances.size()) << 48) ^ (static_cast<uint64_t>(d.ready) << 32) ^
                             (static_cast<uint64_t>(o.queued) << 16) ^ static_cast<uint64_t>(o.in_flight) ^
                             (o.arrivals > 0 ? 1ull << 63 : 0);
    d.arrivals = 0;
    if (d.instances.empty() && o.queued > 0) d.anchor = now_;  // policies evaluate a cold start at once
    ScalingDecision decision = d.policy->decide(o);
    bool acted = false;
    for (const auto& id : decision.stop) {
      auto it = by_id_.find(id);
      if (it == by_id_.end()) continue;
      const Instance& inst = *pool_[it->second];
      if (inst.deployment != dep || !inst.ready || inst.in_flight != 0) continue;
      stop(it->second);
      acted = true;
    }
    const int live = static_cast<int>(o.instances.size());
    int desired = std::min(decision.desired, std::max(d.max_instances, d.min_instances));
    bool blocked = false;
    if (live < desired) {
      const uint64_t capacity = placement_.capacity(c.device);
      if (capacity > 0 && d.spec->memory_bytes > capacity) {
        // The model cannot fit its device at all: every waiting request is refused (507).
        refused_no_memory_ += d.queue.size();
        outstanding_ -= d.queue.size();
        d.queue.clear();
      } else {
        const bool warm = options_.spec.always_on() && now_ == 0;
        for (int i = live; i < desired; ++i) {
          const size_t before = d.instances.size();
          start(dep, warm);
          if (d.instances.size() == before) {
            blocked = true;
            break;
          }
        }
        acted = true;
      }
    }
    // When to look again (also when the policy asked: a pre-warm or a window's end).
    const double revisit = decision.revisit_at_s > 0 ? decision.revisit_at_s - w_.epoch_s : kInf;
    const bool active = !d.instances.empty() || !d.queue.empty();
    if (acted || summary != d.last_summary) d.backoff = kTickS;
    else d.backoff = std::min(d.backoff * 4, kTickMaxS);
    d.last_summary = summary;
    double next = active ? grid_after(d, now_ + d.backoff) : now_ + options_.idle_tick_s;
    if (blocked || !d.queue.empty()) next = std::min(next, now_ + kTickS / 4);
    next = std::min(next, next_expiry);
    if (revisit > now_) next = std::min(next, revisit + kExpiryEpsS);
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
      if (inst.in_flight > 0) busy_seconds_ += clip(now_) - clip(inst.busy_since);
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
      const double cap = static_cast<double>(placement_.capacity(w_.devices[dev].name));
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
  platform::Placement placement_;
  std::vector<Dep> deps_;
  std::vector<std::unique_ptr<Instance>> pool_;
  std::vector<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> by_id_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> heap_;
  uint64_t seq_ = 0;
  double now_ = 0;
  bool dispatching_ = false;
  bool deciding_ = false;
  const double eval_interval_s_ = platform::PolicyOptions{}.evaluation_interval_s;
  int64_t outstanding_ = 0;  // requests queued or in flight

  uint64_t requests_ = 0, served_ = 0, refused_queue_full_ = 0, refused_timeout_ = 0, refused_no_memory_ = 0;
  uint64_t cold_requests_ = 0, cold_starts_ = 0, instance_starts_ = 0, decisions_ = 0, events_ = 0;
  double instance_seconds_ = 0, busy_seconds_ = 0, cost_ = 0;
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
