#include "platform/autoscale/concurrency_policy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "platform/autoscale/fake_fleet.h"

namespace zs::platform {
namespace {

using testing::FakeFleet;
using testing::shape;

PolicyOptions one_per_instance() {
  PolicyOptions o;
  o.target_concurrency = 1;
  return o;
}

TEST(ConcurrencyPolicy, StartsOneAtOnceForARequestAtZero) {
  ConcurrencyPolicy p({});
  auto o = shape(4, 4, 10);
  o.now_s = 100;
  EXPECT_EQ(p.decide(o).desired, 0);
  o.now_s = 100.02;  // within the evaluation interval: still a cold start never waits
  o.queued = 1;
  o.arrivals = 1;
  auto d = p.decide(o);
  EXPECT_EQ(d.desired, 1);
  EXPECT_NE(d.reason.find("cold start"), std::string::npos) << d.reason;
}

TEST(ConcurrencyPolicy, BurstPanicsUpAndScalesToZeroAfterKeepAlive) {
  auto* raw = new ConcurrencyPolicy(one_per_instance());
  FakeFleet f(std::unique_ptr<ScalingPolicy>(raw), shape(20, 1, 30));
  f.run(0, 10, 0.5, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);
  // Step from 0 to 8 requests: one cold start, then the panic window sees 8 against capacity 1.
  f.run(10, 18.5, 0.5, [](double) { return 8; }, [](double t) { return t == 10 ? 8 : 0; });
  EXPECT_TRUE(raw->panicking());
  EXPECT_TRUE(f.saw_reason("panic: demand")) << f.all_reasons();
  EXPECT_EQ(f.live(), 8) << f.all_reasons();  // once the panic window holds only the burst
  f.run(18.5, 130, 0.5, [](double) { return 8; });
  EXPECT_FALSE(raw->panicking());  // a stable window without the panic condition ended it
  EXPECT_TRUE(f.saw_reason("panic over")) << f.all_reasons();
  EXPECT_EQ(f.live(), 8);
  EXPECT_EQ(f.starts, 8);
  // Back to 0 at t=130: the last request ends; nothing goes before keep_alive (30 s) of quiet.
  f.run(130, 159, 0.5, [](double) { return 0; });
  EXPECT_GT(f.live(), 0);
  f.run(159, 163, 0.5, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0) << f.all_reasons();
  EXPECT_TRUE(f.saw_reason("scale to zero: no traffic for")) << f.all_reasons();
}

TEST(ConcurrencyPolicy, PanicNeverScalesDownAndEndsAfterAStableWindow) {
  auto* raw = new ConcurrencyPolicy(one_per_instance());
  FakeFleet f(std::unique_ptr<ScalingPolicy>(raw), shape(20, 1, 600));
  f.run(0, 100, 0.5, [](double) { return 1; });
  ASSERT_EQ(f.live(), 1);
  ASSERT_FALSE(raw->panicking());
  // 10x the capacity for 20 s: panic within the panic window's first evaluations.
  double entered = -1;
  for (double t = 100; t < 120; t += 0.5) {
    f.step(t, 10);
    if (raw->panicking() && entered < 0) entered = t;
  }
  ASSERT_GE(entered, 100);
  EXPECT_LE(entered, 104);  // 2 s of 10 against 4 s of 1 averages 4 >= 2x capacity 1
  const int peak = f.last.desired;
  EXPECT_EQ(peak, 10);
  // Load back to 1: while panicking the count never goes down.
  double left = -1;
  for (double t = 120; t < 300; t += 0.5) {
    f.step(t, 1);
    if (raw->panicking()) {
      EXPECT_GE(f.last.desired, peak) << "at " << t;
    } else if (left < 0) {
      left = t;
    }
  }
  // The panic condition last held while the 9 new instances were starting (until ~106 s):
  // panic ends one stable window (60 s) after that.
  EXPECT_GE(left, 160);
  EXPECT_LE(left, 172);
  // Then the stable window decides: down to 1, at most halving per evaluation.
  EXPECT_EQ(f.live(), 1) << f.all_reasons();
}

TEST(ConcurrencyPolicy, ScaleUpAndDownAreRateLimitedPerEvaluation) {
  PolicyOptions opt = one_per_instance();
  opt.max_scale_up_rate = 2;
  opt.stable_window_s = 6;
  opt.panic_window_s = 1;
  FakeFleet f(std::make_unique<ConcurrencyPolicy>(opt), shape(64, 1, 600), /*start_s=*/0);
  f.step(0, 1, 1);
  f.run(0.5, 10, 0.5, [](double) { return 1; });
  ASSERT_EQ(f.live(), 1);
  // Up: at most 2x the ready count per evaluation.
  int before = f.live();
  for (double t = 10; t < 40; t += 0.5) {
    f.step(t, 32);
    EXPECT_LE(f.live(), 2 * std::max(1, before)) << "at " << t;
    before = f.live();
  }
  EXPECT_EQ(f.live(), 32);
  // Down: to no fewer than floor(ready / 2) per evaluation (max_scale_down_rate 2).
  std::vector<int> seen{f.live()};
  for (double t = 40; t < 80; t += 0.5) {
    f.step(t, 1);
    if (f.live() != seen.back()) seen.push_back(f.live());
  }
  ASSERT_GE(seen.size(), 4u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1] / 2) << "step " << i;
  EXPECT_EQ(seen.back(), 1);
}

TEST(ConcurrencyPolicy, ScaleDownDelayHoldsTheHighestRecentCount) {
  PolicyOptions opt = one_per_instance();
  opt.stable_window_s = 6;
  opt.panic_window_s = 6;
  opt.scale_down_delay_s = 30;
  FakeFleet f(std::make_unique<ConcurrencyPolicy>(opt), shape(10, 1, 600), 0);
  f.run(0, 20, 0.5, [](double) { return 4; });
  ASSERT_EQ(f.live(), 4);
  f.run(20, 45, 0.5, [](double) { return 1; });
  EXPECT_EQ(f.live(), 4);  // the delay window still holds a recommendation of 4
  // Then rate-limited steps (4 -> 2 -> 1), each held for the delay as well: the delay applies
  // to the final recommendation, as in Knative.
  f.run(45, 60, 0.5, [](double) { return 1; });
  EXPECT_EQ(f.live(), 2);
  f.run(60, 100, 0.5, [](double) { return 1; });
  EXPECT_EQ(f.live(), 1);
}

TEST(ConcurrencyPolicy, FlappingLoadDoesNotFlapInstances) {
  FakeFleet f(std::make_unique<ConcurrencyPolicy>(one_per_instance()), shape(20, 4, 30));
  auto alternating = [](double t) { return static_cast<int>(std::floor(t / 3)) % 2 == 0 ? 6 : 0; };
  f.run(0, 180, 0.5, alternating);
  const int starts = f.starts, stops = f.stops, live = f.live();
  EXPECT_GE(live, 3);
  f.run(180, 900, 0.5, alternating);
  EXPECT_EQ(f.starts, starts) << f.all_reasons();
  EXPECT_EQ(f.stops, stops) << f.all_reasons();
  EXPECT_EQ(f.live(), live);
}

TEST(ConcurrencyPolicy, KeepAliveTimesScaleToZeroAndNegativePinsInstances) {
  FakeFleet f(std::make_unique<ConcurrencyPolicy>(PolicyOptions{}), shape(4, 4, 30));
  f.step(10, 1, 1);
  f.run(10.5, 20, 0.5, [](double) { return 1; });
  f.run(20, 49.5, 0.5, [](double) { return 0; });
  EXPECT_EQ(f.live(), 1);
  f.run(49.5, 52, 0.5, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);

  FakeFleet pinned(std::make_unique<ConcurrencyPolicy>(PolicyOptions{}), shape(4, 1, -1));
  pinned.step(0, 3, 3);
  pinned.run(0.5, 20, 0.5, [](double) { return 3; });
  pinned.run(20, 2000, 5, [](double) { return 0; });
  EXPECT_EQ(pinned.live(), 3);
  EXPECT_EQ(pinned.stops, 0);
}

TEST(ConcurrencyPolicy, DiurnalLoadFollowsDemandWithoutChurn) {
  // Two simulated days; demand follows the sun from 0 at midnight to 12 at noon, observed at
  // irregular intervals (as the simulator does at event times).
  FakeFleet f(std::make_unique<ConcurrencyPolicy>(one_per_instance()), shape(20, 1, 120));
  auto demand = [](double t) {
    const double x = std::sin(2 * M_PI * t / 86400 - M_PI / 2);
    return std::max(0, static_cast<int>(std::lround(12 * x)));
  };
  int peak = 0, unserved_steps = 0, steps = 0;
  double t = 0;
  for (int i = 0; t < 2 * 86400; ++i) {
    f.step(t, demand(t));
    peak = std::max(peak, f.live());
    if (std::fmod(t, 86400) > 3 * 3600 && std::fmod(t, 86400) < 5 * 3600) {
      EXPECT_EQ(f.live(), 0) << "night, " << t;
    }
    if (f.ready_count() < demand(t)) ++unserved_steps;
    ++steps;
    t += (i % 3 == 0) ? 0.02 : (i % 3 == 1 ? 7 : 13);
  }
  EXPECT_EQ(peak, 12);
  EXPECT_LT(unserved_steps, steps / 100);  // only while instances start
  EXPECT_LE(f.starts, 2 * 12 + 4) << f.all_reasons();  // each instance started about once a day
}

}  // namespace
}  // namespace zs::platform
