#include "platform/autoscale/rules_policy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "platform/autoscale/fake_fleet.h"

namespace zs::platform {
namespace {

using testing::FakeFleet;
using testing::shape;

TEST(RulesPolicy, DeepQueueScalesOutInCooledDownStepsThenScalesInStepByStep) {
  FakeFleet f(std::make_unique<RulesPolicy>(PolicyOptions{}), shape(10, 4, 3600));
  f.step(0, 300, 300);
  EXPECT_EQ(f.live(), 1);  // a cold start never waits for the rules
  std::vector<std::pair<double, int>> outs;
  int before = f.live();
  for (double t = 0.5; t < 600; t += 0.5) {
    const bool starting = f.ready_count() < f.live();
    f.step(t, 300);
    if (f.live() > before) {
      EXPECT_FALSE(starting) << "scaled out at " << t << " while an instance was starting";
      outs.emplace_back(t, f.live());
    }
    before = f.live();
  }
  ASSERT_GE(outs.size(), 3u);
  for (size_t i = 1; i < outs.size(); ++i) EXPECT_GE(outs[i].first - outs[i - 1].first, 30);
  EXPECT_EQ(f.live(), 10);
  EXPECT_TRUE(f.saw_reason("rules: queue")) << f.all_reasons();
  // Load gone: one step of 25% (at least 1) every 300 s, never all at once.
  std::vector<std::pair<double, int>> ins;
  before = f.live();
  for (double t = 600; t < 3000; t += 1) {
    f.step(t, 0);
    if (f.live() < before) ins.emplace_back(t, f.live());
    before = f.live();
  }
  ASSERT_EQ(ins.size(), 7u) << f.all_reasons();  // 10 -> 8 -> 6 -> 5 -> 4 -> 3 -> 2 -> 1
  EXPECT_EQ(ins[0].second, 8);
  EXPECT_EQ(ins[1].second, 6);
  EXPECT_EQ(ins.back().second, 1);
  for (size_t i = 1; i < ins.size(); ++i) EXPECT_GE(ins[i].first - ins[i - 1].first, 300);
  // Zero only after keep_alive (3600 s) without traffic.
  f.run(3000, 4190, 2, [](double) { return 0; });
  EXPECT_EQ(f.live(), 1);
  f.run(4190, 4210, 2, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);
  EXPECT_TRUE(f.saw_reason("scale to zero")) << f.all_reasons();
}

TEST(RulesPolicy, ScaleInKeepsBusyInstancesAndAWarmSpare) {
  FakeFleet f(std::make_unique<RulesPolicy>(PolicyOptions{}), shape(10, 4, 86400));
  f.step(0, 300, 300);
  f.run(0.5, 600, 0.5, [](double) { return 300; });
  ASSERT_EQ(f.live(), 10);
  // Two requests keep running (utilisation 2/40): busy 2 + 10% of the count as spare.
  f.run(600, 6000, 1, [](double) { return 2; });
  EXPECT_EQ(f.live(), 3) << f.all_reasons();
}

TEST(RulesPolicy, SustainedHighUtilisationScalesOutOnlyAfterItsPeriod) {
  PolicyOptions opt;
  opt.rules_scale_out_cooldown_s = 0;
  FakeFleet f(std::make_unique<RulesPolicy>(opt), shape(10, 4, 600));
  f.step(0, 4, 4);
  f.run(0.5, 10, 0.5, [](double) { return 4; });  // ready at 5 s: utilisation 100% from then
  f.run(10, 124, 0.5, [](double) { return 4; });
  EXPECT_EQ(f.live(), 1);
  f.run(124, 130, 0.5, [](double) { return 4; });
  EXPECT_EQ(f.live(), 2) << f.all_reasons();
  EXPECT_TRUE(f.saw_reason("utilisation above 85%")) << f.all_reasons();
  f.run(130, 600, 0.5, [](double) { return 4; });  // 4 over 8 slots: 50%, neither rule holds
  EXPECT_EQ(f.live(), 2);
}

TEST(RulesPolicy, TtftAboveObjectiveScalesOut) {
  RulesPolicy p({});
  auto o = shape(10, 4, 600);
  o.ttft_objective_s = 2;
  o.in_flight = 1;
  o.instances = {{"a", true, 1, 0}};
  o.now_s = 100;
  o.ttft_p95_s = 2.3;  // within 20% of the objective
  EXPECT_EQ(p.decide(o).desired, 1);
  o.now_s = 140;
  o.ttft_p95_s = 3.1;
  auto d = p.decide(o);
  EXPECT_EQ(d.desired, 2);
  EXPECT_NE(d.reason.find("ttft p95 3.1 s > 1.2x objective 2 s"), std::string::npos) << d.reason;
}

TEST(RulesPolicy, FlappingLoadDoesNotFlapInstances) {
  FakeFleet f(std::make_unique<RulesPolicy>(PolicyOptions{}), shape(10, 4, 60));
  f.run(0, 3600, 0.5, [](double t) { return static_cast<int>(std::floor(t / 4)) % 2 == 0 ? 3 : 0; },
        [](double t) { return std::fmod(t, 8) == 0 ? 3 : 0; });
  EXPECT_EQ(f.starts, 1) << f.all_reasons();
  EXPECT_EQ(f.stops, 0);
}

TEST(RulesPolicy, DiurnalLoadRisesWithTheDayAndScalesToZeroAtNight) {
  FakeFleet f(std::make_unique<RulesPolicy>(PolicyOptions{}), shape(10, 4, 900));
  auto demand = [](double t) {
    return std::max(0, static_cast<int>(std::lround(200 * std::sin(2 * M_PI * t / 86400 - M_PI / 2))));
  };
  int peak = 0;
  for (double t = 0; t < 2 * 86400; t += 5) {
    f.step(t, demand(t), demand(t) > 0 ? 1 : 0);
    peak = std::max(peak, f.live());
    if (std::fmod(t, 86400) == 4 * 3600) {
      EXPECT_EQ(f.live(), 0) << "night of day " << static_cast<int>(t / 86400);
    }
  }
  EXPECT_EQ(peak, 10);
  EXPECT_LE(f.starts, 2 * 10 + 4) << f.all_reasons();
}

}  // namespace
}  // namespace zs::platform
