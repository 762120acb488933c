#include "platform/autoscale/scaling_policy.h"

#include <gtest/gtest.h>

#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/time_window.h"

namespace zs::platform {
namespace {

TEST(ScalingPolicy, EveryNameMakesItsPolicy) {
  for (const auto& name : scaling_policy_names()) {
    auto p = make_scaling_policy(name, {});
    ASSERT_TRUE(p.is_ok()) << name << ": " << p.status().message();
    EXPECT_EQ(p.value()->name(), name);
    EXPECT_TRUE(p.value()->restore_state("").is_ok()) << name;  // nothing saved yet: a fresh start
  }
  EXPECT_EQ(make_scaling_policy("", {}).value()->name(), "hybrid");  // the default
  EXPECT_EQ(make_scaling_policy("", {}).value()->name(), kDefaultScalingPolicy);
}

TEST(ScalingPolicy, UnknownNameIsAnErrorListingTheKnownOnes) {
  auto r = make_scaling_policy("magic", {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("known: hybrid, concurrency, rules, fixed, histogram, predictive"), std::string::npos)
      << r.status().message();
}

TEST(ScalingPolicy, OptionsOutOfRangeNameTheField) {
  PolicyOptions o;
  o.panic_window_s = 120;  // longer than the stable window
  auto r = make_scaling_policy("concurrency", o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("panic_window_s must be <= stable_window_s (got 120)"), std::string::npos)
      << r.status().message();
  o = {};
  o.histogram_margin = 1.5;
  EXPECT_NE(validate_policy_options(o).message().find("histogram_margin must be between 0 and 1"), std::string::npos);
  o = {};
  o.hybrid_cold_start_cost_s = -1;
  EXPECT_NE(validate_policy_options(o).message().find("hybrid_cold_start_cost_s must be >= 0 (got -1)"), std::string::npos);
  o = {};
  o.max_scale_down_rate = 1;
  EXPECT_FALSE(validate_policy_options(o).is_ok());
  EXPECT_TRUE(validate_policy_options({}).is_ok());
  EXPECT_TRUE(validate_policy_options({2.0}).is_ok());  // the fleet builds options as {target}
}

TEST(ScalingPolicy, StateOfAnotherPolicyIsRefused) {
  auto h = make_scaling_policy("histogram", {}).value();
  auto p = make_scaling_policy("predictive", {}).value();
  EXPECT_FALSE(h->restore_state(p->save_state()).is_ok());
  auto r = p->restore_state(h->save_state());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.message().find("restoring the predictive policy"), std::string::npos) << r.message();
}

TEST(PolicySupport, InstancesForToleratesRoundingNoise) {
  EXPECT_EQ(instances_for(0, 4), 0);
  EXPECT_EQ(instances_for(0.01, 4), 1);
  EXPECT_EQ(instances_for(8.0000001, 4), 2);
  EXPECT_EQ(instances_for(8.1, 4), 3);
}

TEST(PolicySupport, SurplusIdleStopsLongestIdleFirstAndNeverBusyOrStarting) {
  DeploymentObservation o;
  o.instances = {{"a", true, 0, 5}, {"b", true, 0, 30}, {"c", true, 1, 0}, {"d", false, 0, 0}, {"e", true, 0, 11}};
  EXPECT_EQ(surplus_idle(o, 2), (std::vector<std::string>{"b", "e", "a"}));
  EXPECT_EQ(surplus_idle(o, 4), (std::vector<std::string>{"b"}));
  EXPECT_EQ(surplus_idle(o, 0, 10), (std::vector<std::string>{"b", "e"}));
  EXPECT_TRUE(surplus_idle(o, 5).empty());
}

TEST(TimeWeightedWindow, AveragesByTimeNotBySample) {
  TimeWeightedWindow w(60);
  EXPECT_EQ(w.average(0, 60), 0);
  w.add(0, 10);
  EXPECT_EQ(w.average(0, 60), 10);  // no time has passed: the latest value
  for (int i = 1; i <= 100; ++i) w.add(i * 0.01, 10);  // many samples of one step count once
  w.add(1, 0);
  EXPECT_DOUBLE_EQ(w.average(4, 60), 2.5);  // 10 for 1 s, 0 for 3 s: over the observed 4 s only
  EXPECT_DOUBLE_EQ(w.average(4, 2), 0);
  w.add(100, 4);
  EXPECT_DOUBLE_EQ(w.average(130, 60), 2);  // [70, 100) at 0, [100, 130) at 4
  w.add(50, 1);                             // the clock stepped back: a new history
  EXPECT_DOUBLE_EQ(w.average(51, 60), 1);
}

TEST(Cadence, DueEveryIntervalAndAfterAClockReset) {
  Cadence c(2);
  EXPECT_TRUE(c.due(10));
  c.mark(10);
  EXPECT_FALSE(c.due(11.9));
  EXPECT_TRUE(c.due(12));
  EXPECT_TRUE(c.due(3));
}

}  // namespace
}  // namespace zs::platform
