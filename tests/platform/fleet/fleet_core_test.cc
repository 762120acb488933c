// The fleet core on a virtual clock: no processes, no threads, no sleeps. Each test hands the
// core events and checks the actions it answers with.
#include "platform/fleet/fleet_core.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace zs::platform {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

DeploymentSpec spec(const std::string& name, int slots = 2, int max_instances = 2) {
  DeploymentSpec s;
  s.name = name;
  s.slots = slots;
  s.max_instances = max_instances;
  s.max_queue = 3;
  s.keep_alive_s = 10;
  s.request_timeout_s = 30;
  s.start_timeout_s = 20;
  s.memory_bytes = kGiB;
  s.device = "cpu0";
  s.policy = "fixed";
  s.fingerprint = name;
  return s;
}

// Drives a FleetCore and keeps what its actions said.
struct Harness {
  explicit Harness(uint64_t device_bytes = 4 * kGiB, double health_check_s = 0)
      : core(options(device_bytes, health_check_s)) {}
  explicit Harness(std::vector<DeviceConfig> devices) : core(options(std::move(devices))) {}

  static FleetCoreOptions options(std::vector<DeviceConfig> devices) {
    FleetCoreOptions o;
    o.devices = std::move(devices);
    o.health_check_s = 0;
    return o;
  }

  static FleetCoreOptions options(uint64_t device_bytes, double health_check_s) {
    FleetCoreOptions o;
    o.devices = {{"cpu0", "cpu", device_bytes, 0}};
    o.health_check_s = health_check_s;
    return o;
  }

  FleetCore core;
  double now = 0;
  uint64_t next_tag = 1;
  std::map<uint64_t, Lease> leases;           // dispatched requests
  std::map<uint64_t, AcquireFailure> failed;  // failed requests
  std::vector<StartAction> starts;
  std::vector<SignalAction> signals;
  std::vector<ProbeAction> probes;
  std::vector<SleepAction> sleeps;
  std::vector<DecisionAction> decisions;
  std::vector<std::string> errors;

  std::vector<uint64_t> dispatched;  // tags, in order

  void take(FleetActions& a) {
    for (auto& d : a.dispatches) {
      dispatched.push_back(d.tag);
      EXPECT_FALSE(leases.count(d.tag) || failed.count(d.tag)) << "tag " << d.tag << " answered twice";
      leases[d.tag] = d.lease;
    }
    for (auto& f : a.failures) {
      EXPECT_FALSE(leases.count(f.tag) || failed.count(f.tag)) << "tag " << f.tag << " answered twice";
      failed[f.tag] = f.failure;
    }
    starts.insert(starts.end(), a.starts.begin(), a.starts.end());
    signals.insert(signals.end(), a.signals.begin(), a.signals.end());
    probes.insert(probes.end(), a.probes.begin(), a.probes.end());
    sleeps.insert(sleeps.end(), a.sleeps.begin(), a.sleeps.end());
    errors.insert(errors.end(), a.errors.begin(), a.errors.end());
    decisions.insert(decisions.end(), a.decisions.begin(), a.decisions.end());
    a.clear();
  }
  void set(std::vector<DeploymentSpec> specs) {
    FleetActions a;
    core.set_deployments(std::move(specs), now, a);
    take(a);
  }
  uint64_t acquire(const std::string& dep, RequestClass cls = RequestClass::kInteractive, int order = 0) {
    FleetActions a;
    const uint64_t tag = next_tag++;
    core.acquire(core.deployment_index(dep), cls, order, tag, now, a);
    take(a);
    return tag;
  }
  void tick() {
    FleetActions a;
    core.tick(now, a);
    take(a);
  }
  void advance(double s) {
    now += s;
    tick();
  }
  void ready(InstanceKey k) {
    FleetActions a;
    core.instance_ready(k, now, a);
    take(a);
  }
  void exited(InstanceKey k, int status = 0) {
    FleetActions a;
    core.instance_exited(k, status, now, a);
    take(a);
  }
  void release(uint64_t tag, bool failed_instance = false) {
    FleetActions a;
    const Lease& l = leases.at(tag);
    core.release(l.instance, l.cls, failed_instance, now, a);
    take(a);
  }
  void probe(InstanceKey k, bool ok) {
    FleetActions a;
    core.probe_result(k, ok, now, a);
    take(a);
  }
  void slept(InstanceKey k, const core::Status& result) {
    FleetActions a;
    core.sleep_result(k, result, now, a);
    take(a);
  }
  void retiring(InstanceKey k) {
    FleetActions a;
    core.instance_retiring(k, now, a);
    take(a);
  }
  bool signalled(InstanceKey k, bool kill) const {
    for (const auto& s : signals)
      if (s.instance == k && s.kill == kill) return true;
    return false;
  }
  DeploymentStatus status(const std::string& name) const {
    for (const auto& s : core.status(now))
      if (s.name == name) return s;
    return {};
  }
};

TEST(FleetCore, ARequestAtZeroStartsAnInstanceAndWaitsForIt) {
  Harness h;
  h.set({spec("a")});
  const uint64_t t = h.acquire("a");
  EXPECT_TRUE(h.starts.empty()) << "starts are decided on a tick, not inside acquire";
  h.advance(0.02);
  ASSERT_EQ(h.starts.size(), 1u);
  EXPECT_TRUE(h.starts[0].for_request);
  EXPECT_EQ(h.starts[0].id, "a-1");
  EXPECT_EQ(h.status("a").cold_starts, 1u);
  EXPECT_FALSE(h.leases.count(t));
  h.now = 3;
  h.ready(h.starts[0].instance);
  ASSERT_TRUE(h.leases.count(t));
  EXPECT_NEAR(h.leases[t].cold_start_ms, 3000, 1e-6);
  EXPECT_NEAR(h.leases[t].queue_ms, 3000, 1e-6);
  EXPECT_EQ(h.leases[t].instance_id, "a-1");
}

TEST(FleetCore, RequestsGoToTheLeastLoadedReadyInstanceWithinItsSlots) {
  Harness h;
  auto s = spec("a", /*slots=*/2);
  s.min_instances = 2;
  h.set({s});
  h.tick();
  ASSERT_EQ(h.starts.size(), 2u);
  h.ready(h.starts[0].instance);
  h.ready(h.starts[1].instance);
  std::map<InstanceKey, int> load;
  for (int i = 0; i < 4; ++i) ++load[h.leases[h.acquire("a")].instance];
  EXPECT_EQ(load[h.starts[0].instance], 2);
  EXPECT_EQ(load[h.starts[1].instance], 2);
  const uint64_t fifth = h.acquire("a");  // every slot taken: it waits
  EXPECT_FALSE(h.leases.count(fifth));
  EXPECT_EQ(h.status("a").queued, 1);
  h.release(1);
  EXPECT_TRUE(h.leases.count(fifth));
}

TEST(FleetCore, InteractiveGoesBeforeBatchAndHigherOrderFirst) {
  Harness h;
  auto s = spec("a", /*slots=*/1, /*max_instances=*/1);
  s.min_instances = 1;
  s.max_queue = 10;
  h.set({s});
  h.tick();
  h.ready(h.starts[0].instance);
  const uint64_t busy = h.acquire("a");
  const uint64_t batch = h.acquire("a", RequestClass::kBatch);
  const uint64_t low = h.acquire("a", RequestClass::kInteractive, 0);
  const uint64_t high = h.acquire("a", RequestClass::kInteractive, 5);
  std::vector<uint64_t> order;
  uint64_t current = busy;
  for (int i = 0; i < 3; ++i) {
    h.release(current);
    for (uint64_t t : {batch, low, high})
      if (h.leases.count(t) && std::find(order.begin(), order.end(), t) == order.end()) {
        order.push_back(t);
        current = t;
      }
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{high, low, batch}));
}

TEST(FleetCore, InteractiveRequestsUseSlotsThatBatchWorkHolds) {
  Harness h;
  auto s = spec("a", /*slots=*/1, /*max_instances=*/1);
  s.min_instances = 1;
  h.set({s});
  h.tick();
  h.ready(h.starts[0].instance);
  const uint64_t b = h.acquire("a", RequestClass::kBatch);
  ASSERT_TRUE(h.leases.count(b));
  const uint64_t b2 = h.acquire("a", RequestClass::kBatch);
  EXPECT_FALSE(h.leases.count(b2)) << "batch takes only free slots";
  const uint64_t i = h.acquire("a");
  EXPECT_TRUE(h.leases.count(i)) << "the worker pauses batch work for interactive requests";
}

TEST(FleetCore, AFullQueueRefusesAtOnce) {
  Harness h;
  h.set({spec("a")});
  for (int i = 0; i < 3; ++i) h.acquire("a");
  const uint64_t t = h.acquire("a");
  ASSERT_TRUE(h.failed.count(t));
  EXPECT_EQ(h.failed[t].status.code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(h.failed[t].status.message().find("max_queue"), std::string::npos);
  // The other class has its own bound.
  EXPECT_FALSE(h.failed.count(h.acquire("a", RequestClass::kBatch)));
}

TEST(FleetCore, WaitingLongerThanRequestTimeoutFails) {
  Harness h;
  auto s = spec("a");
  s.start_timeout_s = 100;
  h.set({s});
  const uint64_t t = h.acquire("a");
  h.advance(29);
  EXPECT_FALSE(h.failed.count(t));
  h.advance(2);
  ASSERT_TRUE(h.failed.count(t));
  EXPECT_EQ(h.failed[t].status.code(), core::StatusCode::kDeadlineExceeded);
}

TEST(FleetCore, ARequestSentAgainKeepsTheDeadlineOfItsFirstWait) {
  Harness h;
  auto s = spec("a");
  s.start_timeout_s = 100;
  h.set({s});
  h.advance(20);
  // It first asked 20 s ago (its instance could not be reached): 10 s of its 30 s are left.
  FleetActions a;
  const uint64_t t = h.next_tag++;
  h.core.acquire(h.core.deployment_index("a"), RequestClass::kInteractive, 0, t, h.now, a, h.now - 20);
  h.take(a);
  h.advance(9);
  EXPECT_FALSE(h.failed.count(t));
  h.advance(2);
  ASSERT_TRUE(h.failed.count(t));
  EXPECT_EQ(h.failed[t].status.code(), core::StatusCode::kDeadlineExceeded);
}

TEST(FleetCore, AnIdleInstanceStopsAfterItsKeepAliveAndFreesItsMemory) {
  Harness h;
  h.set({spec("a")});
  const uint64_t t = h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.ready(k);
  h.advance(1);
  h.release(t);
  EXPECT_EQ(h.core.device_memory()[0].used, kGiB);
  h.advance(9.5);
  EXPECT_FALSE(h.signalled(k, false));
  h.advance(1);
  EXPECT_TRUE(h.signalled(k, false));
  EXPECT_EQ(h.status("a").instances_draining, 1);
  EXPECT_EQ(h.core.device_memory()[0].used, kGiB) << "memory frees when the process has exited";
  h.exited(k);
  EXPECT_EQ(h.core.device_memory()[0].used, 0u);
  EXPECT_EQ(h.status("a").state(), "idle");
  EXPECT_EQ(h.status("a").crashes, 0u) << "an exit that was asked for is no crash";
}

TEST(FleetCore, ACrashBacksOffTheNextStart) {
  Harness h;
  h.set({spec("a")});
  h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.ready(k);
  h.now = 1;
  h.exited(k, 139);
  EXPECT_EQ(h.status("a").crashes, 1u);
  h.acquire("a");
  h.advance(1.5);  // back-off of 2 s after the first failure
  EXPECT_EQ(h.starts.size(), 1u);
  h.advance(1);
  EXPECT_EQ(h.starts.size(), 2u);
}

TEST(FleetCore, ThreeFailedStartsFailTheWaitingRequests) {
  Harness h;
  auto s = spec("a");
  s.request_timeout_s = 1000;
  h.set({s});
  const uint64_t t = h.acquire("a");
  for (size_t i = 0; i < 3; ++i) {
    h.advance(40);  // past any back-off
    ASSERT_EQ(h.starts.size(), i + 1);
    EXPECT_FALSE(h.failed.count(t));
    FleetActions a;
    h.core.start_failed(h.starts.back().instance, "no such file", h.now, a);
    h.take(a);
  }
  ASSERT_TRUE(h.failed.count(t));
  EXPECT_EQ(h.failed[t].status.code(), core::StatusCode::kUnavailable);
  EXPECT_NE(h.failed[t].status.message().find("no such file"), std::string::npos);
  EXPECT_EQ(h.core.device_memory()[0].used, 0u);
}

TEST(FleetCore, AStartThatTakesTooLongIsKilled) {
  Harness h;
  h.set({spec("a")});
  h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.advance(19);
  EXPECT_FALSE(h.signalled(k, true));
  h.advance(2);
  EXPECT_TRUE(h.signalled(k, true));
}

TEST(FleetCore, ADrainingInstanceIsKilledAfterTheGracePeriod) {
  Harness h;
  h.set({spec("a")});
  const uint64_t t = h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.ready(k);
  auto changed = spec("a");
  changed.fingerprint = "new";
  h.set({changed});  // a reload drains the busy instance
  EXPECT_FALSE(h.signalled(k, false)) << "a busy instance finishes its requests first";
  h.advance(31);
  EXPECT_TRUE(h.signalled(k, true));
  (void)t;
}

TEST(FleetCore, HealthProbesRunOnlyWhenDueAndThreeFailedInARowRestartTheInstance) {
  Harness h(4 * kGiB, /*health_check_s=*/5);
  h.set({spec("a")});
  h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.ready(k);
  h.advance(4);
  EXPECT_TRUE(h.probes.empty());
  h.advance(2);
  ASSERT_EQ(h.probes.size(), 1u);
  h.advance(1);
  EXPECT_EQ(h.probes.size(), 1u) << "one probe at a time per instance";
  // A busy worker may miss one deadline: it is probed again a second later, and a success
  // clears the count.
  h.probe(k, false);
  EXPECT_FALSE(h.signalled(k, true));
  h.advance(1.5);
  ASSERT_EQ(h.probes.size(), 2u) << "probed again soon after a failure";
  h.probe(k, false);
  h.advance(1.5);
  ASSERT_EQ(h.probes.size(), 3u);
  h.probe(k, true);
  h.advance(1.5);
  EXPECT_EQ(h.probes.size(), 3u) << "the usual interval after a success";
  h.advance(5);
  ASSERT_EQ(h.probes.size(), 4u);
  h.probe(k, false);
  h.advance(1.5);
  ASSERT_EQ(h.probes.size(), 5u);
  h.probe(k, false);
  EXPECT_FALSE(h.signalled(k, true)) << "two failures in a row are not three";
  h.advance(1.5);
  ASSERT_EQ(h.probes.size(), 6u);
  h.probe(k, false);
  EXPECT_TRUE(h.signalled(k, true));
  EXPECT_EQ(h.status("a").crashes, 1u);
}

TEST(FleetCore, AnUnreachableInstanceGetsNoRequestsUntilItPassesAProbe) {
  Harness h(4 * kGiB, /*health_check_s=*/5);
  auto s = spec("a", 2, 1);
  h.set({s});
  const uint64_t t = h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.ready(k);
  h.release(t, /*failed_instance=*/true);
  const uint64_t next = h.acquire("a");
  EXPECT_FALSE(h.leases.count(next));
  h.advance(0.02);
  ASSERT_FALSE(h.probes.empty()) << "probed at once";
  h.probe(k, true);
  EXPECT_TRUE(h.leases.count(next));
}

TEST(FleetCore, AStartingInstanceThatDoesNotAnnounceItselfIsProbedUntilReady) {
  Harness h;
  auto s = spec("a");
  s.announces_ready = false;
  h.set({s});
  const uint64_t t = h.acquire("a");
  h.tick();
  const InstanceKey k = h.starts[0].instance;
  h.advance(0.02);
  ASSERT_EQ(h.probes.size(), 1u);
  EXPECT_TRUE(h.probes[0].readiness);
  h.probe(k, false);
  h.advance(0.02);
  ASSERT_EQ(h.probes.size(), 2u);
  h.probe(k, true);
  EXPECT_TRUE(h.leases.count(t));
}

TEST(FleetCore, MemoryIsMadeByEvictingAnIdleInstanceOfALowerOrEqualPriority) {
  Harness h(kGiB);
  h.set({spec("a"), spec("b")});
  const uint64_t ta = h.acquire("a");
  h.tick();
  const InstanceKey ka = h.starts[0].instance;
  h.ready(ka);
  h.release(ta);
  h.acquire("b");
  h.tick();
  EXPECT_TRUE(h.signalled(ka, false));
  EXPECT_EQ(h.starts.size(), 1u) << "b starts once a's memory is free";
  bool evict = false;
  for (const auto& d : h.decisions) evict |= d.action == "evict" && d.deployment == "a";
  EXPECT_TRUE(evict);
  h.exited(ka);
  h.tick();
  ASSERT_EQ(h.starts.size(), 2u);
  EXPECT_EQ(h.core.spec(h.starts[1].deployment).name, "b");
}

TEST(FleetCore, AHigherPriorityInstanceIsNeverEvicted) {
  Harness h(kGiB);
  auto a = spec("a");
  a.priority = 1;
  h.set({a, spec("b")});
  const uint64_t ta = h.acquire("a");
  h.tick();
  const InstanceKey ka = h.starts[0].instance;
  h.ready(ka);
  h.release(ta);
  h.acquire("b");
  h.tick();
  EXPECT_FALSE(h.signalled(ka, false));
}

TEST(FleetCore, AModelLargerThanItsDeviceFailsItsRequests) {
  Harness h(kGiB);
  auto s = spec("a");
  s.memory_bytes = 2 * kGiB;
  h.set({s});
  const uint64_t t = h.acquire("a");
  h.tick();
  ASSERT_TRUE(h.failed.count(t));
  EXPECT_EQ(h.failed[t].status.code(), core::StatusCode::kInsufficientMemory);
  EXPECT_TRUE(h.starts.empty());
}

TEST(FleetCore, ARemovedDeploymentFailsItsWaitersAndDrains) {
  Harness h;
  h.set({spec("a"), spec("b")});
  const uint64_t t = h.acquire("a", RequestClass::kInteractive);
  h.set({spec("b")});
  ASSERT_TRUE(h.failed.count(t));
  EXPECT_EQ(h.failed[t].status.code(), core::StatusCode::kNotFound);
  EXPECT_EQ(h.core.deployment_index("a"), -1);
  EXPECT_EQ(h.core.deployment_names(), std::vector<std::string>{"b"});
}

TEST(FleetCore, PrewarmAndScaleHoldInstancesWithoutRequests) {
  Harness h;
  h.set({spec("a"), spec("b")});
  ASSERT_TRUE(h.core.prewarm("a", h.now).is_ok());
  ASSERT_TRUE(h.core.scale("b", 2).is_ok());
  EXPECT_FALSE(h.core.scale("b", 3).is_ok());
  EXPECT_FALSE(h.core.prewarm("zzz", h.now).is_ok());
  h.tick();
  int a = 0, b = 0;
  for (const auto& s : h.starts) (h.core.spec(s.deployment).name == "a" ? a : b)++;
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  for (const auto& s : h.starts) EXPECT_FALSE(s.for_request);
}

TEST(FleetCore, EveryPolicyScalesFromZeroAndBackToZero) {
  for (const auto& policy : scaling_policy_names()) {
    SCOPED_TRACE(policy);
    Harness h;
    auto s = spec("a");
    s.policy = policy;
    s.keep_alive_s = 30;
    h.set({s});
    const uint64_t t = h.acquire("a");
    h.advance(0.02);
    ASSERT_EQ(h.starts.size(), 1u);
    h.now += 1;
    h.ready(h.starts[0].instance);
    ASSERT_TRUE(h.leases.count(t));
    h.advance(1);
    h.release(t);
    for (int i = 0; i < 6 * 3600 && !h.signalled(h.starts[0].instance, false); ++i) h.advance(1);
    EXPECT_TRUE(h.signalled(h.starts[0].instance, false)) << "never scaled in";
  }
}

// Random events against invariants that a simpler bookkeeping checks: every request answered
// exactly once, slots never exceeded, the memory in use equal to what live instances hold.
TEST(FleetCore, RandomEventsKeepEveryInvariant) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    Harness h(3 * kGiB, 5);
    auto a = spec("a", 2, 3), b = spec("b", 1, 2);
    b.priority = 1;
    b.policy = "concurrency";
    h.set({a, b});
    std::set<InstanceKey> alive;      // started and not exited
    std::map<uint64_t, int> holding;  // dispatched, not released
    uint64_t asked = 0;
    for (int step = 0; step < 3000; ++step) {
      h.now += std::uniform_real_distribution<double>(0, 0.5)(rng);
      const size_t before = h.starts.size();
      switch (rng() % 7) {
        case 0:
        case 1: h.acquire(rng() % 2 ? "a" : "b", rng() % 4 ? RequestClass::kInteractive : RequestClass::kBatch); ++asked; break;
        case 2:
          if (!holding.empty()) {
            auto it = std::next(holding.begin(), static_cast<long>(rng() % holding.size()));
            h.release(it->first, rng() % 20 == 0);
            holding.erase(it);
          }
          break;
        case 3:
          for (InstanceKey k : alive) {
            if (rng() % 2) h.ready(k);
            if (rng() % 40 == 0) h.retiring(k);
          }
          break;
        case 4:
          if (!alive.empty() && rng() % 8 == 0) {
            auto it = std::next(alive.begin(), static_cast<long>(rng() % alive.size()));
            h.exited(*it, 1);
            for (auto l = holding.begin(); l != holding.end();)  // its requests fail
              l = h.leases[l->first].instance == *it ? holding.erase(l) : std::next(l);
            alive.erase(it);
          }
          break;
        case 5:
          for (const auto& p : h.probes) h.probe(p.instance, rng() % 10 != 0);
          h.probes.clear();
          break;
        default: h.tick(); break;
      }
      for (size_t i = before; i < h.starts.size(); ++i) alive.insert(h.starts[i].instance);
      for (uint64_t tag : h.dispatched) holding[tag] = 1;
      h.dispatched.clear();
      // Stopped instances exit; their requests end with them.
      for (const auto& s : h.signals)
        if (alive.erase(s.instance)) {
          h.exited(s.instance);
          for (auto l = holding.begin(); l != holding.end();)
            l = h.leases[l->first].instance == s.instance ? holding.erase(l) : std::next(l);
        }
      h.signals.clear();
      for (uint64_t tag : h.dispatched) holding[tag] = 1;  // exits may free slots for others
      h.dispatched.clear();
      uint64_t used = 0;
      int in_flight = 0, known = 0, counted = 0;
      for (const auto& s : h.core.status(h.now)) {
        in_flight += s.in_flight;
        counted += s.instances_ready + s.instances_starting + s.instances_draining;
      }
      for (InstanceKey k : alive) known += h.core.instance_id(k).empty() ? 0 : 1;
      ASSERT_EQ(counted, known) << "the per-state counters agree with the instances";
      for (InstanceKey k : alive) used += kGiB * (h.core.instance_id(k).empty() ? 0 : 1);
      ASSERT_EQ(h.core.device_memory()[0].used, used);
      ASSERT_LE(used, 3 * kGiB);
      ASSERT_EQ(in_flight, static_cast<int>(holding.size()));
    }
    // Every request is answered once, or still waiting.
    uint64_t waiting = 0;
    for (const auto& s : h.core.status(h.now)) waiting += s.queued;
    EXPECT_EQ(h.leases.size() + h.failed.size() + waiting, asked);
  }
}

// ---------------------------------------------------------------------------------------------
// Sleeping instances
// ---------------------------------------------------------------------------------------------

DeploymentSpec sleepy(const std::string& name, double sleep_after_s = 2) {
  DeploymentSpec s = spec(name, /*slots=*/2, /*max_instances=*/2);
  s.sleep_after_s = sleep_after_s;
  return s;
}

// Starts one instance of `name` for a request, serves it and returns the instance; the request
// finishes at `h.now`.
InstanceKey serve_one(Harness& h, const std::string& name) {
  const uint64_t t = h.acquire(name);
  h.advance(0.02);
  const InstanceKey k = h.starts.back().instance;
  h.ready(k);
  EXPECT_TRUE(h.leases.count(t));
  h.release(t);
  return k;
}

TEST(FleetCoreSleep, AnIdleInstanceSleepsAfterSleepAfterAndTheNextRequestWakesIt) {
  Harness h;
  h.set({sleepy("a", 2)});
  const InstanceKey k = serve_one(h, "a");
  h.advance(1.9);
  EXPECT_TRUE(h.sleeps.empty()) << "idle for less than sleep_after";
  h.advance(0.2);
  ASSERT_EQ(h.sleeps.size(), 1u);
  EXPECT_EQ(h.sleeps[0].instance, k);
  EXPECT_EQ(h.status("a").instances_sleeping, 1);
  EXPECT_EQ(h.status("a").instances_ready, 0);
  EXPECT_EQ(h.status("a").state(), "sleeping");
  h.slept(k, core::Status::ok());

  const uint64_t t = h.acquire("a");
  ASSERT_TRUE(h.leases.count(t)) << "a sleeping instance takes the request at once: it wakes as it arrives";
  EXPECT_TRUE(h.leases[t].woke);
  EXPECT_LT(h.leases[t].cold_start_ms, 0);
  EXPECT_STREQ(start_kind(h.leases[t]), "wake");
  EXPECT_EQ(h.leases[t].instance, k);
  EXPECT_EQ(h.status("a").instances_ready, 1);
  EXPECT_EQ(h.status("a").wakes, 1u);
  EXPECT_EQ(h.starts.size(), 1u) << "no new instance";
  h.release(t);
  const uint64_t warm = h.acquire("a");
  EXPECT_STREQ(start_kind(h.leases[warm]), "warm");
}

TEST(FleetCoreSleep, ASleepingInstanceStopsAfterKeepAliveCountedFromItsLastRequest) {
  Harness h;
  h.set({sleepy("a", 2)});  // keep_alive 10 s
  const InstanceKey k = serve_one(h, "a");
  const double last_request = h.now;
  h.advance(3);
  ASSERT_EQ(h.sleeps.size(), 1u);
  h.slept(k, core::Status::ok());
  h.now = last_request + 9.9;
  h.tick();
  EXPECT_FALSE(h.signalled(k, false));
  h.now = last_request + 10.1;
  h.tick();
  EXPECT_TRUE(h.signalled(k, false)) << "asleep past keep_alive: it stops as an idle one would";
  h.exited(k);
  EXPECT_EQ(h.status("a").state(), "idle");
  const uint64_t t = h.acquire("a");
  h.advance(0.02);
  EXPECT_EQ(h.starts.size(), 2u) << "after a stop the next request cold-starts";
  h.ready(h.starts.back().instance);
  EXPECT_STREQ(start_kind(h.leases[t]), "cold");
}

TEST(FleetCoreSleep, ASleeperCountsAsIdleAndAnIdleAwakeInstanceGoesFirst) {
  Harness h;
  auto s = sleepy("a", 2);
  s.min_instances = 3;
  s.max_instances = 3;
  h.set({s});
  h.tick();
  ASSERT_EQ(h.starts.size(), 3u);
  for (const auto& st : h.starts) h.ready(st.instance);
  h.advance(2.1);  // all three idle since ready
  ASSERT_EQ(h.sleeps.size(), 3u);
  const uint64_t a = h.acquire("a");  // wakes one
  ASSERT_TRUE(h.leases[a].woke);
  h.release(a);                        // it is idle and awake now
  const uint64_t b = h.acquire("a");  // the idle awake one, not a sleeper
  EXPECT_FALSE(h.leases[b].woke);
  EXPECT_EQ(h.leases[b].instance, h.leases[a].instance);
  const uint64_t c = h.acquire("a");  // least loaded first: an idle sleeper before the busy one
  EXPECT_TRUE(h.leases[c].woke);
  EXPECT_NE(h.leases[c].instance, h.leases[a].instance);
  EXPECT_EQ(h.status("a").instances_sleeping, 1);
  EXPECT_EQ(h.status("a").wakes, 2u);
}

TEST(FleetCoreSleep, ARequestArrivingWhileTheInstanceGoesToSleepWakesIt) {
  Harness h;
  h.set({sleepy("a", 2)});
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  ASSERT_EQ(h.sleeps.size(), 1u);
  // The request comes before the worker answered the sleep call; the worker then refuses to
  // sleep (it is busy): the instance stays awake and no error is logged.
  const uint64_t t = h.acquire("a");
  ASSERT_TRUE(h.leases.count(t));
  h.slept(k, core::Status::failed_precondition("not idle"));
  EXPECT_TRUE(h.errors.empty());
  EXPECT_EQ(h.status("a").instances_ready, 1);
  EXPECT_EQ(h.status("a").instances_sleeping, 0);
  h.release(t);
  h.advance(2.5);
  EXPECT_EQ(h.sleeps.size(), 2u) << "idle again: it may sleep later";
}

TEST(FleetCoreSleep, ABusyRefusalKeepsTheInstanceAwakeUntilItIsIdleForSleepAfterAgain) {
  Harness h;
  h.set({sleepy("a", 2)});
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  ASSERT_EQ(h.sleeps.size(), 1u);
  h.slept(k, core::Status::failed_precondition("not idle"));
  EXPECT_EQ(h.status("a").instances_ready, 1);
  h.advance(1);
  EXPECT_EQ(h.sleeps.size(), 1u);
  h.advance(1.5);
  EXPECT_EQ(h.sleeps.size(), 2u);
}

TEST(FleetCoreSleep, AnInstanceThatCannotSleepIsNeverAskedAgain) {
  Harness h;
  h.set({sleepy("a", 2)});
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  ASSERT_EQ(h.sleeps.size(), 1u);
  h.slept(k, core::Status::unavailable("an embedding worker cannot sleep"));
  EXPECT_EQ(h.errors.size(), 1u);
  EXPECT_EQ(h.status("a").instances_ready, 1);
  for (int i = 0; i < 5; ++i) h.advance(1);
  EXPECT_EQ(h.sleeps.size(), 1u);
}

TEST(FleetCoreSleep, ACrashWhileSleepingCountsAsACrashAndTheNextRequestColdStarts) {
  Harness h;
  h.set({sleepy("a", 2)});
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  h.slept(k, core::Status::ok());
  h.exited(k, 139);
  EXPECT_EQ(h.status("a").crashes, 1u);
  EXPECT_EQ(h.status("a").instances_sleeping, 0);
  ASSERT_FALSE(h.errors.empty());
  const uint64_t t = h.acquire("a");
  EXPECT_FALSE(h.leases.count(t));
  h.advance(2.1);  // past the crash back-off (2 s after one crash)
  ASSERT_EQ(h.starts.size(), 2u);
  h.ready(h.starts.back().instance);
  EXPECT_STREQ(start_kind(h.leases[t]), "cold");
}

TEST(FleetCoreSleep, SleepingInstancesAreProbedAndAFailedOneIsRestarted) {
  Harness h(4 * kGiB, /*health_check_s=*/5);
  h.set({sleepy("a", 2)});
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  h.slept(k, core::Status::ok());
  h.probes.clear();
  h.advance(5.1);
  ASSERT_EQ(h.probes.size(), 1u) << "a sleeping process can die too";
  h.probe(k, false);
  h.advance(1.1);
  h.probe(k, false);
  h.advance(1.1);
  h.probe(k, false);
  EXPECT_TRUE(h.signalled(k, true));
}

TEST(FleetCoreSleep, WhenADeviceIsFullSleepingInstancesAreStoppedFirst) {
  Harness h(2 * kGiB);
  auto a = sleepy("a", 2), b = sleepy("b", 100), c = spec("c");
  h.set({a, b, c});
  const InstanceKey kb = serve_one(h, "b");  // reserved first: the older one
  const InstanceKey ka = serve_one(h, "a");
  h.advance(2.5);  // a sleeps, b stays awake and idle
  ASSERT_EQ(h.sleeps.size(), 1u);
  EXPECT_EQ(h.sleeps[0].instance, ka);
  h.acquire("c");
  h.advance(0.02);
  EXPECT_TRUE(h.signalled(ka, false)) << "the sleeping instance makes room";
  EXPECT_FALSE(h.signalled(kb, false)) << "the awake idle instance of b is older but stays";
}

// Accelerator sleepers: a GPU that holds two instances and a host with room for both.
Harness gpu_and_host(uint64_t host_bytes = 8 * kGiB) {
  return Harness(std::vector<DeviceConfig>{{"gpu0", "cuda", 2 * kGiB, 0}, {"cpu0", "cpu", host_bytes, 0}});
}
DeploymentSpec on_gpu(DeploymentSpec s) {
  s.device = "gpu0";
  return s;
}
uint64_t used(const Harness& h, const std::string& device) {
  for (const auto& m : h.core.device_memory())
    if (m.device == device) return m.used;
  return ~uint64_t{0};
}

TEST(FleetCoreSleep, AConfirmedSleeperOnAnAcceleratorIsCountedOnTheHostAndMovesBackWhenWoken) {
  Harness h = gpu_and_host();
  h.set({on_gpu(sleepy("a", 2))});
  const InstanceKey k = serve_one(h, "a");
  EXPECT_EQ(used(h, "gpu0"), kGiB);
  h.advance(2.5);
  ASSERT_EQ(h.sleeps.size(), 1u);
  EXPECT_EQ(used(h, "gpu0"), kGiB) << "until the worker confirms its sleep, it holds the accelerator";
  h.slept(k, core::Status::ok());
  EXPECT_EQ(used(h, "gpu0"), 0u);
  EXPECT_EQ(used(h, "cpu0"), kGiB);

  const uint64_t t = h.acquire("a");
  ASSERT_TRUE(h.leases.count(t));
  EXPECT_TRUE(h.leases[t].woke);
  EXPECT_EQ(used(h, "gpu0"), kGiB);
  EXPECT_EQ(used(h, "cpu0"), 0u);
  h.release(t);
  h.exited(k);
  EXPECT_EQ(used(h, "gpu0"), 0u);
}

TEST(FleetCoreSleep, AnAcceleratorFreedByASleeperTakesAnotherDeploymentWithoutEvictingIt) {
  Harness h = gpu_and_host();
  h.set({on_gpu(sleepy("a", 2)), on_gpu(sleepy("b", 100)), on_gpu(spec("c"))});
  const InstanceKey ka = serve_one(h, "a");
  serve_one(h, "b");
  h.advance(2.5);
  h.slept(ka, core::Status::ok());
  const uint64_t t = h.acquire("c");
  h.advance(0.02);
  EXPECT_FALSE(h.signalled(ka, false)) << "the sleeper's memory is on the host: nothing to evict";
  ASSERT_EQ(h.starts.size(), 3u) << "c starts at once in the room a left";
  h.ready(h.starts.back().instance);
  EXPECT_TRUE(h.leases.count(t));
  EXPECT_EQ(used(h, "gpu0"), 2 * kGiB);
  EXPECT_EQ(used(h, "cpu0"), kGiB);
}

TEST(FleetCoreSleep, WakingASleeperWhoseAcceleratorIsFullEvictsAnIdleInstanceAndWaitsForItsExit) {
  Harness h = gpu_and_host();
  h.set({on_gpu(sleepy("a", 2)), on_gpu(sleepy("b", 100)), on_gpu(sleepy("c", 100))});
  const InstanceKey ka = serve_one(h, "a");
  const InstanceKey kb = serve_one(h, "b");
  h.advance(2.5);
  h.slept(ka, core::Status::ok());
  const InstanceKey kc = serve_one(h, "c");  // takes the room a left
  EXPECT_EQ(used(h, "gpu0"), 2 * kGiB);

  const uint64_t t = h.acquire("a");
  EXPECT_FALSE(h.leases.count(t)) << "no room on gpu0 for a to wake into";
  EXPECT_TRUE(h.signalled(kb, false) || h.signalled(kc, false)) << "an idle instance there is stopped to make room";
  const InstanceKey victim = h.signalled(kb, false) ? kb : kc;
  h.advance(0.1);
  EXPECT_FALSE(h.leases.count(t)) << "still waiting for the victim to exit";
  h.exited(victim);
  h.advance(0.1);
  ASSERT_TRUE(h.leases.count(t));
  EXPECT_TRUE(h.leases[t].woke);
  EXPECT_EQ(h.leases[t].instance, ka);
  EXPECT_EQ(used(h, "gpu0"), 2 * kGiB);
  EXPECT_EQ(used(h, "cpu0"), 0u);
}

TEST(FleetCoreSleep, ASleeperStaysOnItsAcceleratorWhenTheHostHasNoRoomAndOnACpuDeviceNothingMoves) {
  {
    Harness h = gpu_and_host(/*host_bytes=*/kGiB / 2);
    h.set({on_gpu(sleepy("a", 2))});
    const InstanceKey k = serve_one(h, "a");
    h.advance(2.5);
    h.slept(k, core::Status::ok());
    EXPECT_EQ(used(h, "gpu0"), kGiB);
    EXPECT_EQ(used(h, "cpu0"), 0u);
    const uint64_t t = h.acquire("a");
    EXPECT_TRUE(h.leases.count(t) && h.leases[t].woke);
  }
  Harness h = gpu_and_host();
  h.set({sleepy("a", 2)});  // on cpu0
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  h.slept(k, core::Status::ok());
  EXPECT_EQ(used(h, "cpu0"), kGiB);
  EXPECT_EQ(used(h, "gpu0"), 0u);
}

TEST(FleetCoreSleep, ASleepThatFailedOrWasOvertakenByARequestLeavesTheReservationOnTheAccelerator) {
  Harness h = gpu_and_host();
  h.set({on_gpu(sleepy("a", 2))});
  const InstanceKey k = serve_one(h, "a");
  h.advance(2.5);
  h.slept(k, core::Status::failed_precondition("busy"));
  EXPECT_EQ(used(h, "gpu0"), kGiB);
  h.advance(2.5);  // sleeps again
  const uint64_t t = h.acquire("a");  // wakes it before the worker confirmed
  ASSERT_TRUE(h.leases.count(t));
  h.slept(k, core::Status::ok());  // the confirmation arrives late: it is awake, nothing moves
  EXPECT_EQ(used(h, "gpu0"), kGiB);
  EXPECT_EQ(used(h, "cpu0"), 0u);
}

TEST(FleetCoreSleep, ADeploymentThatNeverSleepsKeepsItsIdleInstancesAwake) {
  Harness h;
  h.set({spec("a")});  // sleep_after < 0
  serve_one(h, "a");
  for (int i = 0; i < 9; ++i) h.advance(1);
  EXPECT_TRUE(h.sleeps.empty());
  EXPECT_EQ(h.status("a").instances_ready, 1);
}

}  // namespace
}  // namespace zs::platform

namespace zs::platform {
namespace {

// ---------------------------------------------------------------------------------------------
// Instances that end by themselves (a cluster job's time limit)
// ---------------------------------------------------------------------------------------------

TEST(FleetCoreRetiring, AReplacementStartsAtOnceAndTheRetiringInstanceServesUntilItIsReady) {
  Harness h;
  auto s = spec("a", /*slots=*/2, /*max_instances=*/1);
  h.set({s});
  const uint64_t first = h.acquire("a");
  h.advance(0.02);
  const InstanceKey old = h.starts[0].instance;
  h.ready(old);
  h.retiring(old);
  ASSERT_EQ(h.starts.size(), 2u) << "a replacement, even beyond max_instances 1";
  EXPECT_FALSE(h.starts[1].for_request);
  const InstanceKey fresh = h.starts[1].instance;
  // Until the replacement is ready, requests still go to the retiring instance.
  const uint64_t second = h.acquire("a");
  ASSERT_TRUE(h.leases.count(second));
  EXPECT_EQ(h.leases[second].instance, old);
  EXPECT_FALSE(h.signalled(old, false));
  h.advance(1);
  EXPECT_EQ(h.starts.size(), 2u) << "one replacement, not one per tick";
  h.ready(fresh);
  h.advance(0.02);
  EXPECT_EQ(h.status("a").instances_draining, 1) << "replaced: it drains";
  EXPECT_FALSE(h.signalled(old, false)) << "not stopped while its requests run";
  const uint64_t third = h.acquire("a");
  ASSERT_TRUE(h.leases.count(third));
  EXPECT_EQ(h.leases[third].instance, fresh);
  h.release(first);
  h.release(second);
  EXPECT_TRUE(h.signalled(old, false)) << "stopped once its last request ended";
  EXPECT_FALSE(h.signalled(fresh, false));
}

TEST(FleetCoreRetiring, OtherInstancesGoFirstWhileItWaitsForItsReplacement) {
  Harness h;
  auto s = spec("a", /*slots=*/4, /*max_instances=*/3);
  s.min_instances = 2;
  h.set({s});
  h.tick();
  ASSERT_EQ(h.starts.size(), 2u);
  h.ready(h.starts[0].instance);
  h.ready(h.starts[1].instance);
  const InstanceKey old = h.starts[0].instance, other = h.starts[1].instance;
  h.acquire("a");  // one request on each
  h.acquire("a");
  h.retiring(old);
  EXPECT_EQ(h.status("a").instances_draining, 1) << "another ready instance takes over at once";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.leases[h.acquire("a")].instance, other);
  h.advance(0.02);
  EXPECT_EQ(h.starts.size(), 3u) << "min_instances 2 brings a new one";
}

TEST(FleetCoreRetiring, AFailedReplacementIsStartedAgainAfterItsBackOff) {
  Harness h;
  h.set({spec("a")});
  const InstanceKey old = serve_one(h, "a");
  h.retiring(old);
  ASSERT_EQ(h.starts.size(), 2u);
  h.exited(h.starts[1].instance, 1);  // the replacement crashed while starting
  h.advance(0.5);
  EXPECT_EQ(h.starts.size(), 2u) << "backing off";
  h.advance(2);
  ASSERT_EQ(h.starts.size(), 3u);
  h.ready(h.starts[2].instance);
  h.advance(0.02);
  EXPECT_TRUE(h.signalled(old, false));
}

TEST(FleetCoreRetiring, TheReplacementOfAnIdleInstanceKeepsItsIdlenessForKeepAlive) {
  Harness h;
  h.set({spec("a")});  // keep_alive 10 s
  const InstanceKey old = serve_one(h, "a");
  h.advance(6);
  h.retiring(old);
  ASSERT_EQ(h.starts.size(), 2u);
  const InstanceKey fresh = h.starts[1].instance;
  h.advance(1);
  h.ready(fresh);
  h.advance(0.02);
  EXPECT_TRUE(h.signalled(old, false));
  h.exited(old);
  h.advance(2.5);
  EXPECT_FALSE(h.signalled(fresh, false)) << "idle 9.5 s of 10";
  h.advance(1);
  EXPECT_TRUE(h.signalled(fresh, false)) << "keep-alive counted from the last request, not from the replacement";
}

TEST(FleetCoreRetiring, AStartingOrDrainingInstanceIsReplacedOnlyOnceReady) {
  Harness h;
  h.set({spec("a")});
  h.acquire("a");
  h.advance(0.02);
  const InstanceKey k = h.starts[0].instance;
  h.retiring(k);
  EXPECT_EQ(h.starts.size(), 1u) << "not before it is ready";
  h.ready(k);
  h.advance(0.02);
  EXPECT_EQ(h.starts.size(), 2u);
  h.retiring(k);  // said twice: no second replacement
  h.advance(0.02);
  EXPECT_EQ(h.starts.size(), 2u);
}

}  // namespace
}  // namespace zs::platform
