#include "engine/kernels/prefetch_tuner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace zs::engine::kernels {
namespace {

constexpr PrefetchReach kNear = PrefetchReach::kNear;
constexpr PrefetchReach kFar = PrefetchReach::kFar;

// Drives a tuner until it decides: call i reads bytes(i) (1 MB unless given) and, with the
// reach it was handed, runs at rate(reach, i) GB/s. Returns the number of calls it took.
template <class Rate, class Bytes>
int drive(PrefetchTuner& t, Rate rate, Bytes bytes, int max_calls = 10000) {
  int calls = 0;
  while (!t.decided() && calls < max_calls) {
    const int64_t b = bytes(calls);
    const PrefetchReach r = t.next(b);
    t.record(r, b, static_cast<int64_t>(static_cast<double>(b) / rate(r, calls)));
    ++calls;
  }
  return calls;
}
template <class Rate>
int drive(PrefetchTuner& t, Rate rate) {
  return drive(t, rate, [](int) { return int64_t{1'000'000}; });
}

TEST(PrefetchTuner, ChoosesTheReachWhoseMedianRateIsHigher) {
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 3.0);
  for (const bool far_wins : {true, false}) {
    PrefetchTuner t;
    drive(t, [&](PrefetchReach r, int) { return ((r == kFar) == far_wins ? 30.0 : 25.0) + noise(rng); });
    ASSERT_TRUE(t.decided());
    EXPECT_EQ(t.choice(), far_wins ? kFar : kNear);
    EXPECT_EQ(t.next(1'000'000), t.choice()) << "the choice is kept";
  }
}

TEST(PrefetchTuner, DecidesAfterTheWarmUpAndTheSamplesOfBothReaches) {
  PrefetchTuner t({.warmup_calls = 10, .samples = 20});
  const int calls = drive(t, [](PrefetchReach r, int) { return r == kFar ? 30.0 : 20.0; });
  EXPECT_EQ(calls, 10 + 2 * 20);
  EXPECT_EQ(t.recorded(kFar), 20);
  EXPECT_EQ(t.recorded(kNear), 20);
  // (times are whole nanoseconds: rates come back to within 1e-5)
  EXPECT_NEAR(t.median_gbps(kFar), 30.0, 1e-3);
  EXPECT_NEAR(t.median_gbps(kNear), 20.0, 1e-3);
  EXPECT_NEAR(t.far_gain(), 1.5, 1e-4);
}

TEST(PrefetchTuner, WarmUpCallsAreNearAndNotCounted) {
  PrefetchTuner t({.warmup_calls = 8, .samples = 4});
  // The first calls are slow (pages faulting in): were they counted, near would lose.
  drive(t, [](PrefetchReach r, int call) { return call < 8 ? 1.0 : (r == kNear ? 30.0 : 29.0); });
  EXPECT_EQ(t.choice(), kNear);
  PrefetchTuner u({.warmup_calls = 5});
  for (int i = 0; i < 5; ++i) EXPECT_EQ(u.next(1000), kNear);
}

TEST(PrefetchTuner, HandsOutEachPairAsOneNearAndOneFarInRandomOrder) {
  PrefetchTuner t({.warmup_calls = 0, .samples = 1000});
  int far_first = 0;
  for (int pair = 0; pair < 200; ++pair) {
    const PrefetchReach a = t.next(1000), b = t.next(1000);
    ASSERT_NE(a, b) << "pair " << pair;
    far_first += a == kFar;
  }
  EXPECT_GT(far_first, 60);
  EXPECT_LT(far_first, 140);
  // Pairs are per shape: calls on two shapes that alternate still pair up within each shape.
  PrefetchTuner u({.warmup_calls = 0, .samples = 1000});
  for (int pair = 0; pair < 50; ++pair) {
    const PrefetchReach a1 = u.next(1000), b1 = u.next(2000), a2 = u.next(1000), b2 = u.next(2000);
    ASSERT_NE(a1, a2) << "pair " << pair;
    ASSERT_NE(b1, b2) << "pair " << pair;
  }
}

// A model with two long products per layer alternates a fast and a slow matrix. Strict
// alternation of the reaches would give one reach only the fast matrix; and a median over a
// mix of both matrices flips with a call more or less of either. Pairs per shape and ratios
// per shape choose the reach that is better on both.
TEST(PrefetchTuner, APeriodicMixOfFastAndSlowMatricesCannotBiasTheChoice) {
  for (const bool far_wins : {true, false}) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      PrefetchTuner t({.warmup_calls = 0, .samples = 48, .seed = seed});
      drive(
          t,
          [&](PrefetchReach r, int call) {
            const double matrix = call % 2 == 0 ? 40.0 : 20.0;
            return matrix * ((r == kFar) == far_wins ? 1.05 : 1.0);
          },
          [](int call) { return int64_t{call % 2 == 0 ? 4'000'000 : 9'000'000}; });
      EXPECT_EQ(t.choice(), far_wins ? kFar : kNear) << "seed " << seed;
      EXPECT_NEAR(t.far_gain(), far_wins ? 1.05 : 1 / 1.05, 1e-4);
    }
  }
}

TEST(PrefetchTuner, ShapesBeyondTheLimitAreNeitherMeasuredNorHeldUp) {
  PrefetchTuner t({.warmup_calls = 0, .samples = 4});
  for (int i = 0; i < 64; ++i) (void)t.next(1000 + i);  // fills the table of shapes
  EXPECT_EQ(t.next(5000), kNear);
  t.record(kFar, 5000, 10);
  EXPECT_EQ(t.recorded(kFar), 0);
  drive(t, [](PrefetchReach r, int) { return r == kFar ? 2.0 : 1.0; }, [](int) { return int64_t{1000}; });
  EXPECT_EQ(t.choice(), kFar);
}

TEST(PrefetchTuner, MedianMatchesASortedReference) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> gbps(5.0, 50.0);
  for (int n : {1, 2, 7, 48}) {
    PrefetchTuner t({.warmup_calls = 0, .samples = n});
    std::vector<double> seen;
    while (t.recorded(kNear) < n) {
      const PrefetchReach r = t.next(1'000'000);
      const int64_t ns = static_cast<int64_t>(1e6 / gbps(rng));
      if (r == kNear) seen.push_back(1e6 / static_cast<double>(ns));
      t.record(r, 1'000'000, ns);
    }
    std::sort(seen.begin(), seen.end());
    const double want = n % 2 ? seen[n / 2] : (seen[n / 2 - 1] + seen[n / 2]) / 2;
    EXPECT_NEAR(t.median_gbps(kNear), want, 1e-9) << n;
  }
}

TEST(PrefetchTuner, IgnoresEmptyMeasurementsAndCallsAfterTheDecision) {
  PrefetchTuner t({.warmup_calls = 0, .samples = 2});
  EXPECT_EQ(t.median_gbps(kFar), 0.0);
  t.record(kFar, 0, 100);
  t.record(kFar, 100, 0);
  t.record(kNear, -5, 100);
  EXPECT_EQ(t.recorded(kFar), 0);
  EXPECT_EQ(t.recorded(kNear), 0);
  drive(t, [](PrefetchReach r, int) { return r == kFar ? 10.0 : 20.0; });
  ASSERT_TRUE(t.decided());
  t.record(kFar, 1'000'000, 1);  // absurdly fast, too late
  EXPECT_EQ(t.choice(), kNear);
  EXPECT_EQ(t.recorded(kFar), 2);
}

}  // namespace
}  // namespace zs::engine::kernels
