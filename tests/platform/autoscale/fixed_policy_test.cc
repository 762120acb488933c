#include "platform/autoscale/fixed_policy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "platform/autoscale/fake_fleet.h"

namespace zs::platform {
namespace {

using testing::FakeFleet;
using testing::shape;

InstanceObservation inst(const std::string& id, int in_flight, double idle_for, bool ready = true) {
  return {id, ready, in_flight, idle_for};
}

TEST(FixedPolicy, ScalesOutAtOnceWithDemandWithinBounds) {
  FixedPolicy p({});
  auto o = shape(4, 4, 10);
  EXPECT_EQ(p.decide(o).desired, 0);
  o.queued = 1;
  EXPECT_EQ(p.decide(o).desired, 1);
  o.queued = 9;
  auto d = p.decide(o);
  EXPECT_EQ(d.desired, 3);  // no window: the demand of this observation
  EXPECT_NE(d.reason.find("fixed: demand 9 at target 4 -> 3"), std::string::npos) << d.reason;
  o.queued = 100;
  EXPECT_EQ(p.decide(o).desired, 4);  // capped at max_instances
  o.queued = 0;
  o.min_instances = 2;
  EXPECT_EQ(p.decide(o).desired, 2);
  FixedPolicy one({.target_concurrency = 1});
  o.min_instances = 0;
  o.in_flight = 3;
  EXPECT_EQ(one.decide(o).desired, 3);
}

TEST(FixedPolicy, StopsIdleInstancesPastKeepAliveDownToMin) {
  FixedPolicy p({});
  auto o = shape(4, 4, 10);
  o.instances = {inst("a", 0, 5), inst("b", 0, 30), inst("c", 1, 0), inst("d", 0, 11)};
  o.in_flight = 1;
  auto d = p.decide(o);
  EXPECT_EQ(d.stop, (std::vector<std::string>{"b", "d"}));  // longest idle first; "a" is within keep_alive
  EXPECT_EQ(d.desired, 2);
  EXPECT_NE(d.reason.find("idle past keep_alive 10 s: stop 2"), std::string::npos) << d.reason;
  o.min_instances = 3;
  EXPECT_EQ(p.decide(o).stop, (std::vector<std::string>{"b"}));
  o.min_instances = 0;
  o.keep_alive_s = -1;  // pinned
  EXPECT_TRUE(p.decide(o).stop.empty());
  o.keep_alive_s = 10;
  o.queued = 2;  // waiting work: keep everything
  EXPECT_TRUE(p.decide(o).stop.empty());
}

TEST(FixedPolicy, BurstScalesOutAndEachInstanceLeavesAfterKeepAlive) {
  FakeFleet f(std::make_unique<FixedPolicy>(PolicyOptions{}), shape(10, 4, 60));
  f.step(0, 20, 20);
  EXPECT_EQ(f.live(), 5);
  f.run(0.5, 30, 0.5, [](double) { return 20; });
  EXPECT_EQ(f.starts, 5);
  f.run(30, 89.5, 0.5, [](double) { return 0; });
  EXPECT_EQ(f.live(), 5);
  f.run(89.5, 91, 0.5, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);
}

TEST(FixedPolicy, FlappingLoadWithinKeepAliveKeepsInstances) {
  FakeFleet f(std::make_unique<FixedPolicy>(PolicyOptions{}), shape(10, 4, 10));
  f.run(0, 600, 0.5, [](double t) { return static_cast<int>(std::floor(t / 3)) % 2 == 0 ? 8 : 0; });
  EXPECT_EQ(f.starts, 2);
  EXPECT_EQ(f.stops, 0);
}

TEST(FixedPolicy, DiurnalLoadScalesToZeroEveryNight) {
  FakeFleet f(std::make_unique<FixedPolicy>(PolicyOptions{}), shape(10, 4, 300));
  auto demand = [](double t) {
    return std::max(0, static_cast<int>(std::lround(30 * std::sin(2 * M_PI * t / 86400 - M_PI / 2))));
  };
  int zero_nights = 0;
  for (double t = 0; t < 3 * 86400; t += 10) {
    f.step(t, demand(t));
    if (std::fmod(t, 86400) == 4 * 3600 && f.live() == 0) ++zero_nights;
  }
  EXPECT_EQ(zero_nights, 3);
  EXPECT_LE(f.starts, 3 * 8 + 3);
}

}  // namespace
}  // namespace zs::platform
