#include "sim/baseline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "platform/config/config.h"
#include "sim/simulator.h"

namespace zs::sim {
namespace {

// Two devices; deployments alternate between them.
Workload workload(int deployments, int slots, int max_instances, uint64_t device_bytes) {
  Workload w;
  for (int d = 0; d < 2; ++d) {
    platform::DeviceConfig dev;
    dev.name = "cpu" + std::to_string(d);
    dev.kind = "cpu";
    dev.memory_bytes = device_bytes;
    dev.price_per_second = 0.01;
    w.devices.push_back(dev);
  }
  ServiceProfile p;
  p.prefill_tokens_per_s = 100;
  p.decode = {{1, 10}, {4, 20}};  // 5 tokens/s per sequence at 4
  for (int k = 0; k < deployments; ++k) {
    SimDeployment d;
    d.config.name = "d" + std::to_string(k);
    d.config.slots = slots;
    d.config.max_instances = max_instances;
    d.device = static_cast<uint32_t>(k % 2);
    d.config.device = w.devices[d.device].name;
    d.memory_bytes = 1ull << 30;
    d.profile = p;
    w.deployments.push_back(d);
  }
  w.duration_s = 3600;
  return w;
}

TEST(AlwaysOnBaseline, ServiceTimeIsThePromptThenTheOutputAtTheFullBatchRate) {
  ServiceProfile p;
  p.prefill_tokens_per_s = 100;
  p.decode = {{1, 10}, {4, 20}};
  const SimRequest q{0, 0, 200, 11};
  EXPECT_DOUBLE_EQ(service_time_at_batch(q, p, 1), 2 + 10 / 10.0);
  EXPECT_DOUBLE_EQ(service_time_at_batch(q, p, 4), 2 + 10 / 5.0);
}

TEST(AlwaysOnBaseline, PeakNeedIsTheMostRequestsInFlightOverSlotsAgainstAReference) {
  std::mt19937 rng(5);
  Workload w = workload(6, 4, 100, 1ull << 40);
  std::uniform_real_distribution<double> at(0, 600);
  std::uniform_int_distribution<int> dep(0, 5), prompt(0, 400), output(1, 40);
  for (int i = 0; i < 3000; ++i)
    w.requests.push_back({at(rng), static_cast<uint32_t>(dep(rng)), static_cast<uint32_t>(prompt(rng)),
                          static_cast<uint32_t>(output(rng))});
  std::sort(w.requests.begin(), w.requests.end(), [](const auto& a, const auto& b) { return a.arrival_s < b.arrival_s; });
  const auto got = always_on_instances(w);
  // Reference: at every arrival, count the requests of that deployment in flight (arrived at
  // or before it, not done before it).
  for (int k = 0; k < 6; ++k) {
    size_t peak = 0;
    for (const auto& q : w.requests) {
      if (q.deployment != static_cast<uint32_t>(k)) continue;
      size_t n = 0;
      for (const auto& r : w.requests)
        if (r.deployment == q.deployment && r.arrival_s <= q.arrival_s &&
            r.arrival_s + service_time_at_batch(r, w.deployments[k].profile, 4) > q.arrival_s)
          ++n;
      peak = std::max(peak, n);
    }
    EXPECT_EQ(got[k], static_cast<int>((peak + 3) / 4)) << "deployment " << k;
  }
}

TEST(AlwaysOnBaseline, BoundedByMaxAndMinInstancesAndZeroWithoutTraffic) {
  Workload w = workload(3, 1, 3, 1ull << 40);
  w.deployments[2].config.min_instances = 2;
  for (int i = 0; i < 10; ++i) w.requests.push_back({0, 0, 100, 1});  // 10 at once, 1 slot each
  const auto got = always_on_instances(w);
  EXPECT_EQ(got[0], 3);  // max_instances
  EXPECT_EQ(got[1], 0);  // no traffic
  EXPECT_EQ(got[2], 2);  // min_instances
}

TEST(AlwaysOnBaseline, PeaksThatDoNotFitTheirDeviceAreTrimmedToACommonCap) {
  // Device 0 holds 6 instances; its deployments 0, 2, 4 want 8, 1 and 3. Capped at 2 they
  // take 2 + 1 + 2 = 5; at 3 they would take 7. Device 1 fits its deployments as they are.
  Workload w = workload(6, 1, 16, 6ull << 30);
  const int want[6] = {8, 2, 1, 2, 3, 1};
  for (int k = 0; k < 6; ++k)
    for (int i = 0; i < want[k]; ++i) w.requests.push_back({0, static_cast<uint32_t>(k), 100, 1});
  std::stable_sort(w.requests.begin(), w.requests.end(), [](const auto& a, const auto& b) { return a.arrival_s < b.arrival_s; });
  const auto got = always_on_instances(w);
  EXPECT_EQ(got, (std::vector<int>{2, 2, 1, 2, 2, 1}));
  // Simulated, every deployment gets its instances and nothing waits for one forever.
  w.requests.push_back({1000, 5, 100, 1});
  RunOptions o;
  o.spec.label = o.spec.policy = kAlwaysOn;
  o.always_on_instances = got;
  auto r = simulate(w, o);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->refused_timeout, 0u);
  EXPECT_EQ(r->peak_per_deployment, got);
}

}  // namespace
}  // namespace zs::sim
