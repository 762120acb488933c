#include "platform/autoscale/predictive_policy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "platform/autoscale/fake_fleet.h"

namespace zs::platform {
namespace {

using testing::FakeFleet;
using testing::shape;

constexpr double kMonday = 1704067200;  // 2024-01-01 00:00 UTC, a Monday
constexpr double kDay = 86400;
constexpr double kHour = 3600;

TEST(ArrivalProfile, LearnsPerHourWithDecayAndLabelsHours) {
  EXPECT_EQ(ArrivalProfile::hour_label(0), "Thu 00:00 UTC");
  EXPECT_EQ(ArrivalProfile::hour_label(kMonday + 9 * kHour + 59), "Mon 09:00 UTC");
  ArrivalProfile p(0.5);
  // Day 1: 40 arrivals at 09:xx, with demand 2 for that hour; nothing else.
  p.observe(kMonday, 0, 0);
  p.observe(kMonday + 9 * kHour, 40, 2);
  p.observe(kMonday + 10 * kHour, 0, 0);
  p.observe(kMonday + kDay, 0, 0);
  auto b = p.expected(kMonday + kDay + 9 * kHour + 10, 2);  // Tuesday: only the hour-of-day bucket knows
  EXPECT_DOUBLE_EQ(b.arrivals, 40);
  EXPECT_DOUBLE_EQ(b.demand, 2);
  EXPECT_EQ(b.samples, 1);
  EXPECT_EQ(p.expected(kMonday + kDay + 3 * kHour, 2).arrivals, 0);
  // Day 2: 20 arrivals: half-way with history weight 0.5.
  p.observe(kMonday + kDay + 9 * kHour, 20, 1);
  p.observe(kMonday + 2 * kDay, 0, 0);
  EXPECT_DOUBLE_EQ(p.expected(kMonday + 2 * kDay + 9 * kHour, 2).arrivals, 30);
  // Text round trip.
  ArrivalProfile q(0.5);
  ASSERT_TRUE(q.parse(p.serialize()).is_ok());
  EXPECT_EQ(q.serialize(), p.serialize());
  auto bad = q.parse("zs-arrival-profile v1\nw 500 1 1 1\n");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("expected 'w|d <hour>"), std::string::npos) << bad.message();
}

TEST(ArrivalProfile, DayOfWeekBucketsTakeOverOnceSeenForEnoughWeeks) {
  ArrivalProfile p(0.5);
  p.observe(kMonday, 0, 0);
  // Three weeks: Mondays at 09:00 busy (100 arrivals), every other day quiet.
  for (int day = 0; day < 21; ++day) {
    const double d0 = kMonday + day * kDay;
    p.observe(d0 + 9 * kHour, day % 7 == 0 ? 100 : 0, day % 7 == 0 ? 3 : 0);
    p.observe(d0 + 10 * kHour, 0, 0);
  }
  p.observe(kMonday + 21 * kDay, 0, 0);
  EXPECT_DOUBLE_EQ(p.expected(kMonday + 21 * kDay + 9 * kHour, 2).arrivals, 100);  // a Monday
  EXPECT_DOUBLE_EQ(p.expected(kMonday + 22 * kDay + 9 * kHour, 2).arrivals, 0);    // a Tuesday
  // With one week only, the hour-of-day bucket (decayed mix of all days) answers.
  EXPECT_GT(p.expected(kMonday + 22 * kDay + 9 * kHour, 99).arrivals, 0);
}

// A daily peak: one request a minute from 09:00 to 10:00 UTC, 30 s each; nothing else.
int peak_demand(double t) {
  const double s = std::fmod(t - kMonday, kDay);
  return s >= 9 * kHour && s < 10 * kHour && std::fmod(s, 60) < 30 ? 1 : 0;
}
int peak_arrivals(double t) {
  const double s = std::fmod(t - kMonday, kDay);
  return s >= 9 * kHour && s < 10 * kHour && std::fmod(s, 60) == 0 ? 1 : 0;
}

PolicyOptions lead_two_minutes() {
  PolicyOptions o;
  o.prewarm_lead_s = 120;
  return o;
}

TEST(PredictivePolicy, PreWarmsBeforeARecurringDailyPeak) {
  auto* raw = new PredictivePolicy(lead_two_minutes());
  FakeFleet f(std::unique_ptr<ScalingPolicy>(raw), shape(4, 4, 60));
  // Three days of history, observed every 5 s.
  f.run(kMonday, kMonday + 3 * kDay, 5, peak_demand, peak_arrivals);
  const int cold_before = f.cold_arrivals;
  // Only the very first request was cold: one day in the hour-of-day profile already pre-warms
  // the next day's peak.
  EXPECT_EQ(cold_before, 1);
  // Day 4 at night: nothing runs.
  const double day4 = kMonday + 3 * kDay;
  f.run(day4, day4 + 3 * kHour, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.live(), 0);
  // Before 09:00 - lead: nothing yet; within the lead: an instance starts before any request.
  f.run(day4 + 3 * kHour, day4 + 9 * kHour - 125, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.live(), 0);
  f.run(day4 + 9 * kHour - 125, day4 + 9 * kHour - 60, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.live(), 1) << f.all_reasons();
  EXPECT_TRUE(f.saw_reason("predictive: expect")) << f.all_reasons();
  EXPECT_TRUE(f.saw_reason("Thu 09:00 UTC")) << f.all_reasons();
  // The peak hour: no cold start at all; the floor holds through the hour.
  f.run(day4 + 9 * kHour - 60, day4 + 10 * kHour, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.cold_arrivals, cold_before);
  // After the peak: back to the concurrency policy, to zero after keep_alive.
  f.run(day4 + 10 * kHour, day4 + 10 * kHour + 300, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.live(), 0) << f.all_reasons();
}

TEST(PredictivePolicy, WithoutHistoryItIsTheConcurrencyPolicy) {
  FakeFleet f(std::make_unique<PredictivePolicy>(lead_two_minutes()), shape(4, 4, 60));
  const double day4 = kMonday + 3 * kDay;
  f.run(day4 + 8 * kHour, day4 + 9 * kHour, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.live(), 0);
  f.run(day4 + 9 * kHour, day4 + 9 * kHour + 10, 5, peak_demand, peak_arrivals);
  EXPECT_EQ(f.cold_arrivals, 1);
}

TEST(PredictivePolicy, StateRoundTripKeepsThePreWarm) {
  FakeFleet f(std::make_unique<PredictivePolicy>(lead_two_minutes()), shape(4, 4, 60));
  f.run(kMonday, kMonday + 3 * kDay, 10, peak_demand, peak_arrivals);
  const std::string saved = f.policy().save_state();
  ASSERT_FALSE(saved.empty());
  PredictivePolicy restored(lead_two_minutes());
  ASSERT_TRUE(restored.restore_state(saved).is_ok());
  EXPECT_EQ(restored.save_state(), saved);
  auto o = shape(4, 4, 60);
  o.now_s = kMonday + 3 * kDay + 9 * kHour - 100;
  auto d = restored.decide(o);
  EXPECT_EQ(d.desired, 1);
  EXPECT_NE(d.reason.find("predictive: expect"), std::string::npos) << d.reason;
  o.now_s = kMonday + 3 * kDay + 12 * kHour;
  EXPECT_EQ(restored.decide(o).desired, 0);
}

TEST(PredictivePolicy, ExpectedDemandSetsTheFloorAboveOne) {
  // A peak of 12 concurrent requests for the hour, target 4: three instances ahead of time.
  PolicyOptions opt = lead_two_minutes();
  opt.target_concurrency = 4;
  PredictivePolicy p(opt);
  ArrivalProfile history(0.7);
  history.observe(kMonday + 9 * kHour, 600, 12);
  history.observe(kMonday + 10 * kHour, 0, 0);
  history.observe(kMonday + 11 * kHour, 0, 0);
  ASSERT_TRUE(p.restore_state(history.serialize()).is_ok());
  auto o = shape(8, 4, 60);
  o.now_s = kMonday + kDay + 9 * kHour - 60;
  EXPECT_EQ(p.decide(o).desired, 3);
}

}  // namespace
}  // namespace zs::platform
