#include "platform/autoscale/scaling_policy.h"

#include <gtest/gtest.h>

namespace zs::platform {
namespace {

DeploymentObservation base() {
  DeploymentObservation o;
  o.min_instances = 0;
  o.max_instances = 4;
  o.slots = 4;
  o.keep_alive_s = 10;
  return o;
}

InstanceObservation inst(const std::string& id, int in_flight, double idle_for, bool ready = true) {
  return {id, ready, in_flight, idle_for};
}

TEST(ConcurrencyPolicy, ScalesOutWithDemandWithinBounds) {
  auto p = make_scaling_policy("concurrency", {}).value();
  auto o = base();
  EXPECT_EQ(p->decide(o).desired, 0);  // nothing to do: stays at zero
  o.queued = 1;
  EXPECT_EQ(p->decide(o).desired, 1);  // a request at zero instances: start one
  o.queued = 9;
  EXPECT_EQ(p->decide(o).desired, 3);
  o.queued = 100;
  EXPECT_EQ(p->decide(o).desired, 4);  // capped at max_instances
  o.queued = 0;
  o.min_instances = 2;
  EXPECT_EQ(p->decide(o).desired, 2);
}

TEST(ConcurrencyPolicy, TargetConcurrencyOverridesSlots) {
  auto p = make_scaling_policy("concurrency", {.target_concurrency = 1}).value();
  auto o = base();
  o.in_flight = 3;
  EXPECT_EQ(p->decide(o).desired, 3);
}

TEST(ConcurrencyPolicy, ScalesInIdleInstancesAfterKeepAliveDownToMin) {
  auto p = make_scaling_policy("concurrency", {}).value();
  auto o = base();
  o.instances = {inst("a", 0, 5), inst("b", 0, 30), inst("c", 1, 0), inst("d", 0, 11)};
  o.in_flight = 1;
  auto d = p->decide(o);
  EXPECT_EQ(d.stop, (std::vector<std::string>{"b", "d"}));  // longest idle first; "a" is within keep_alive
  o.min_instances = 3;
  EXPECT_EQ(p->decide(o).stop, (std::vector<std::string>{"b"}));
  o.min_instances = 0;
  o.keep_alive_s = -1;  // pinned
  EXPECT_TRUE(p->decide(o).stop.empty());
  o.keep_alive_s = 10;
  o.queued = 2;  // waiting work: keep everything
  EXPECT_TRUE(p->decide(o).stop.empty());
}

TEST(FixedPolicy, HoldsMinInstances) {
  auto p = make_scaling_policy("fixed", {}).value();
  auto o = base();
  o.min_instances = 2;
  o.queued = 50;
  EXPECT_EQ(p->decide(o).desired, 2);
}

TEST(ScalingPolicy, UnknownNameIsAnError) {
  auto r = make_scaling_policy("magic", {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("known: concurrency, fixed"), std::string::npos);
}

}  // namespace
}  // namespace zs::platform
