#include "platform/autoscale/hybrid_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "platform/autoscale/fake_fleet.h"

namespace zs::platform {
namespace {

using testing::FakeFleet;
using testing::shape;

// Requests of `length_s` at the given start times; the deployment observed every `dt_s`.
void drive(FakeFleet& f, const std::vector<double>& starts, double length_s, double from_s, double until_s,
           double dt_s = 1) {
  size_t next = 0;
  while (next < starts.size() && starts[next] < from_s) ++next;
  for (double t = from_s; t < until_s; t += dt_s) {
    int arrivals = 0, busy = 0;
    while (next < starts.size() && starts[next] <= t) {
      ++arrivals;
      ++next;
    }
    for (size_t i = 0; i < next; ++i) busy += t < starts[i] + length_s ? 1 : 0;
    f.step(t, busy, arrivals);
  }
}

HybridPolicy restored(const IdleTimeHistogram& h, PolicyOptions o = {}) {
  HybridPolicy p(o);
  EXPECT_TRUE(p.restore_state(h.serialize()).is_ok());
  return p;
}

// The reference: every pair of (ready at a bin's lower edge, keep until a bin's upper edge),
// priced idle time by idle time, by brute force. Returns the cheapest cost.
double brute_force_cost(const std::vector<double>& idle, double bin, double lead, double cold_cost,
                        double prewarm_at, double keep_until) {
  double cost = 0;
  for (double g : idle) {
    const double centre = (std::floor(g / bin) + 0.5) * bin;
    const bool before = prewarm_at > 0 && centre < prewarm_at + lead;
    const bool after = centre > keep_until;
    if (before) cost += cold_cost;
    else if (after) cost += cold_cost + std::max(0.0, keep_until - prewarm_at);
    else cost += centre - prewarm_at;
  }
  return cost;
}

TEST(HybridPolicy, FrequentIdleTimesKeepTheInstanceRareOnesStopIt) {
  PolicyOptions o;
  o.hybrid_cold_start_cost_s = 600;  // a cold start is worth 10 minutes of instance time
  // Idle times of up to 5 minutes, spread evenly: keeping the instance 5 minutes costs under 3
  // minutes per idle period, less than a cold start, and no pre-warm point would pay.
  IdleTimeHistogram often(60, 4 * 3600);
  for (int i = 1; i <= 20; ++i) often.add(15 * i - 1);
  HybridPolicy a = restored(often, o);
  auto w = a.windows();
  ASSERT_TRUE(w.learned) << w.why;
  EXPECT_EQ(w.prewarm_at_s, 0);
  EXPECT_DOUBLE_EQ(w.keep_until_s, 300);
  // Idle times spread evenly over 3 hours: a pre-warm would rarely hit, and keeping the
  // instance through them costs more than the cold starts. It stops at once.
  IdleTimeHistogram spread(60, 4 * 3600);
  for (int i = 0; i < 60; ++i) spread.add(60 + i * 180);
  HybridPolicy b = restored(spread, o);
  w = b.windows();
  ASSERT_TRUE(w.learned);
  EXPECT_EQ(w.prewarm_at_s, 0);
  EXPECT_EQ(w.keep_until_s, 0) << w.why;
}

TEST(HybridPolicy, ACheapSleepTierBuysAWindowAndTheInstanceSleepsThroughIt) {
  PolicyOptions o;
  o.hybrid_cold_start_cost_s = 600;
  // Idle times spread evenly over 3 hours: at the running price no window pays and the last
  // instance stops for good (the test above). Asleep at a tenth of the price, a window from
  // the 25th percentile (43 min) to 3 hours does: the instance is pre-warmed and then sleeps.
  IdleTimeHistogram spread(60, 4 * 3600);
  for (int i = 0; i < 60; ++i) spread.add(60 + i * 180);
  auto fleet = [&](double sleep_after_s, double share) {
    auto p = std::make_unique<HybridPolicy>(o);
    EXPECT_TRUE(p->restore_state(spread.serialize()).is_ok());
    DeploymentObservation d = shape(/*max_instances=*/1, /*slots=*/4, /*keep_alive_s=*/300);
    d.sleep_after_s = sleep_after_s;
    d.sleep_cost_share = share;
    return FakeFleet(std::move(p), d, /*start_s=*/1);
  };
  auto demand = [](double t) { return t < 10 ? 1 : 0; };
  auto arrivals = [](double t) { return t == 0 ? 1 : 0; };
  FakeFleet f = fleet(30, 0.1);
  f.run(0, 3000, 10, demand, arrivals);
  EXPECT_EQ(f.live(), 1) << (f.reasons.empty() ? "" : f.reasons.back());
  EXPECT_EQ(f.last.sleep_after_s, 0) << "inside its window the instance sleeps at once";
  FakeFleet g = fleet(-1, 1);
  g.run(0, 3000, 10, demand, arrivals);
  EXPECT_EQ(g.live(), 0) << (g.reasons.empty() ? "" : g.reasons.back());
  EXPECT_LT(g.last.sleep_after_s, 0) << "no sleeping without a sleep tier";
}

TEST(HybridPolicy, RegularIdleTimesGetAPreWarmJustBeforeTheNextRequest) {
  // Every ~30 minutes: unload after the request, start again just ahead of the 29-31 minute bins.
  IdleTimeHistogram h(60, 4 * 3600);
  for (int i = 0; i < 10; ++i) h.add(29 * 60 + 10);
  for (int i = 0; i < 10; ++i) h.add(30 * 60 + 30);
  HybridPolicy p = restored(h);
  auto w = p.windows();
  ASSERT_TRUE(w.learned);
  EXPECT_DOUBLE_EQ(w.prewarm_at_s, 29 * 60 - PolicyOptions{}.prewarm_lead_s);  // no start measured yet
  EXPECT_DOUBLE_EQ(w.keep_until_s, 31 * 60);
}

TEST(HybridPolicy, ChosenWindowsAreTheCheapestByBruteForce) {
  std::mt19937 rng(11);
  PolicyOptions o;
  o.hybrid_cold_start_cost_s = 900;
  const double lead = o.prewarm_lead_s;
  for (int trial = 0; trial < 20; ++trial) {
    // A mixture of a short burst pattern, a period and some noise.
    std::vector<double> idle;
    std::exponential_distribution<double> burst(1.0 / 40);
    std::normal_distribution<double> period(600.0 + 300 * (trial % 5), 30);
    std::uniform_real_distribution<double> noise(0, 4 * 3600);
    const int n = 30 + trial * 7;
    for (int i = 0; i < n; ++i) {
      const int kind = i % 5;
      idle.push_back(kind < 2 ? burst(rng) : kind < 4 ? std::max(0.0, period(rng)) : noise(rng));
    }
    IdleTimeHistogram h(60, 4 * 3600);
    for (double g : idle) h.add(g);
    HybridPolicy p = restored(h, o);
    const auto w = p.windows();
    ASSERT_TRUE(w.learned);
    const double chosen = brute_force_cost(idle, 60, lead, o.hybrid_cold_start_cost_s, w.prewarm_at_s, w.keep_until_s);
    // The reference tries every keep-until for the pre-warm points the policy considers.
    double best = std::numeric_limits<double>::infinity();
    for (double pct : {0.0, 1.0, 5.0, 10.0, 25.0}) {
      const double head = pct > 0 ? h.percentile_lower_edge_s(pct) : 0;
      double start = head - lead;
      if (start <= lead) start = 0;
      for (int last = 0; last <= 240; ++last) {
        const double until = last * 60.0;
        if (start > 0 && until <= start) continue;
        best = std::min(best, brute_force_cost(idle, 60, lead, o.hybrid_cold_start_cost_s, start, until));
      }
    }
    EXPECT_NEAR(chosen, best, 1e-6 * best) << "trial " << trial << ": " << w.why;
  }
}

TEST(HybridPolicy, BurstsScaleOutAtOnceAndExtraInstancesLeaveAfterTheDelay) {
  PolicyOptions o;
  o.hybrid_scale_in_delay_s = 60;
  FakeFleet f(std::make_unique<HybridPolicy>(o), shape(8, 4, 300), 1);
  f.step(0, 20, 20);
  EXPECT_EQ(f.last.desired, 5);  // 20 requests at 4 per instance, no averaging window
  f.run(1, 30, 1, [](double) { return 20; });
  EXPECT_EQ(f.live(), 5);
  // The burst ends: the four extra instances stay for the delay, then go; the last one
  // follows the keep-alive (nothing learned yet).
  f.run(30, 89, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 5);
  f.run(89, 95, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 1);
  EXPECT_TRUE(f.saw_reason("hybrid: stop 4 idle for 60 s above demand")) << f.all_reasons();
}

TEST(HybridPolicy, UnlearnedDeploymentsFollowTheFixedKeepAlive) {
  FakeFleet f(std::make_unique<HybridPolicy>(PolicyOptions{}), shape(4, 4, 120), 1);
  f.step(0, 1, 1);
  f.run(1, 10, 1, [](double t) { return t < 5 ? 1 : 0; });
  EXPECT_TRUE(f.saw_reason("hybrid: fixed keep_alive 120 s (0 idle times < 10)")) << f.all_reasons();
  f.run(10, 124, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 1);
  f.run(124, 127, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);
  EXPECT_EQ(f.last.revisit_at_s, 0);
}

TEST(HybridPolicy, LearnsAPeriodAndPreWarmsAheadOfItWithTheMeasuredStartTime) {
  // A request every 20 minutes lasting 5 s; instances take 3 s to start.
  auto* raw = new HybridPolicy(PolicyOptions{});
  FakeFleet f(std::unique_ptr<ScalingPolicy>(raw), shape(4, 4, 300), 3);
  std::vector<double> starts;
  for (int i = 0; i < 30; ++i) starts.push_back(1200.0 * i);
  drive(f, starts, 5, 0, 1200 * 12 + 1);
  const int cold_learning = f.cold_arrivals;
  // Cold while learning (the 5-minute keep-alive is too short): the first request and the ten
  // that each end an idle time; the ten make the histogram, and the 12th is pre-warmed.
  EXPECT_EQ(cold_learning, 11);
  const auto w = raw->windows();
  ASSERT_TRUE(w.learned) << w.why;
  // Idle times of 1195 s (bin 19): ready at 19 min, started the measured 3 s ahead.
  EXPECT_DOUBLE_EQ(w.prewarm_at_s, 19 * 60 - 3);
  EXPECT_DOUBLE_EQ(w.keep_until_s, 20 * 60);
  // The policy asks to be looked at when the pre-warm is due (the simulator looks only then).
  f.run(1200 * 12 + 1, 1200 * 12 + 10, 1, [](double t) { return t < 1200 * 12 + 5 ? 1 : 0; });
  EXPECT_DOUBLE_EQ(f.last.revisit_at_s, 1200 * 12 + 5 + 19 * 60 - 3);
  EXPECT_EQ(f.live(), 0);
  drive(f, starts, 5, 1200 * 12 + 10, 1200 * 20);
  EXPECT_EQ(f.cold_arrivals, cold_learning);  // every later request found an instance ready
  // Each period costs about the 1-minute window plus the request, not 5 minutes of keep-alive.
  EXPECT_TRUE(f.saw_reason("hybrid: pre-warm until 20 min idle")) << f.all_reasons();
}

TEST(HybridPolicy, StateSurvivesARestartAndIsRefusedWhenForeign) {
  auto a = make_scaling_policy("hybrid", {}).value();
  FakeFleet f(std::move(a), shape(4, 4, 300));
  std::vector<double> starts;
  for (int i = 0; i < 15; ++i) starts.push_back(900.0 * i);
  drive(f, starts, 5, 0, 900 * 14 + 1, 2);
  const std::string saved = f.policy().save_state();
  HybridPolicy b({});
  ASSERT_TRUE(b.restore_state(saved).is_ok());
  EXPECT_EQ(b.save_state(), saved);
  EXPECT_TRUE(b.windows().learned);
  auto bad = b.restore_state("zs-arrival-profile v1\n");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("restoring the hybrid policy"), std::string::npos) << bad.message();
}

TEST(HybridPolicy, NeverScaleInKeepsEveryInstance) {
  FakeFleet f(std::make_unique<HybridPolicy>(PolicyOptions{}), shape(4, 4, -1), 1);
  f.step(0, 8, 8);
  f.run(1, 600, 1, [](double t) { return t < 10 ? 8 : 0; });
  EXPECT_EQ(f.live(), 2);
}

}  // namespace
}  // namespace zs::platform
