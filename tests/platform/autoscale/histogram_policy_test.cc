#include "platform/autoscale/histogram_policy.h"

#include <gtest/gtest.h>

#include <random>

#include "platform/autoscale/fake_fleet.h"

namespace zs::platform {
namespace {

using testing::FakeFleet;
using testing::shape;

TEST(IdleTimeHistogram, BinsPercentilesAndOutOfBounds) {
  IdleTimeHistogram h(60, 4 * 3600);
  EXPECT_EQ(h.bins(), 240u);
  EXPECT_EQ(h.coefficient_of_variation(), 0);
  for (int i = 0; i < 95; ++i) h.add(9 * 60 + 30);  // bin 9
  for (int i = 0; i < 5; ++i) h.add(61);            // bin 1
  h.add(5 * 3600);                                  // beyond 4 h
  EXPECT_EQ(h.in_range(), 100u);
  EXPECT_EQ(h.out_of_bounds(), 1u);
  EXPECT_EQ(h.count(9), 95u);
  EXPECT_DOUBLE_EQ(h.percentile_lower_edge_s(5), 60);   // the 5th idle time is in bin 1
  EXPECT_DOUBLE_EQ(h.percentile_lower_edge_s(6), 540);
  EXPECT_DOUBLE_EQ(h.percentile_upper_edge_s(99), 600);
  EXPECT_GT(h.coefficient_of_variation(), 10);  // two spikes among 240 bins
}

TEST(IdleTimeHistogram, TextRoundTripAndRebinning) {
  IdleTimeHistogram h(60, 4 * 3600);
  for (int i = 0; i < 20; ++i) h.add(600 + i);
  h.add(3 * 60);
  h.add(99999);
  const std::string text = h.serialize();
  EXPECT_NE(text.find("counts 3:1 10:20"), std::string::npos) << text;
  IdleTimeHistogram same(60, 4 * 3600);
  ASSERT_TRUE(same.parse(text).is_ok());
  EXPECT_EQ(same.serialize(), text);
  // Saved with 1-minute bins, read into 5-minute bins up to 30 min: re-binned by bin centres.
  IdleTimeHistogram coarse(300, 1800);
  ASSERT_TRUE(coarse.parse(text).is_ok());
  EXPECT_EQ(coarse.count(0), 1u);
  EXPECT_EQ(coarse.count(2), 20u);
  EXPECT_EQ(coarse.out_of_bounds(), 1u);
  // Errors say what was expected and leave the histogram as it was.
  auto bad = same.parse("zs-idle-histogram v1\nbin_s 60\nbins 240\nout_of_bounds 0\ncounts 999:1\n");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("bin < 240"), std::string::npos) << bad.message();
  EXPECT_FALSE(same.parse("garbage").is_ok());
  EXPECT_EQ(same.serialize(), text);
}

// The published policy's figures (4 h range, 10% margin, half the idle times may be out of
// bounds); the defaults are tuned for cost (docs/autoscaling.md).
PolicyOptions paper_options() {
  PolicyOptions o;
  o.histogram_range_s = 4 * 3600;
  o.histogram_margin = 0.1;
  o.histogram_max_oob_fraction = 0.5;
  return o;
}

// Requests of `length_s` at the given start times; the deployment observed every `dt_s`.
void drive(FakeFleet& f, const std::vector<double>& starts, double length_s, double until_s, double dt_s = 1) {
  size_t next = 0;
  for (double t = 0; t < until_s; t += dt_s) {
    int arrivals = 0;
    while (next < starts.size() && starts[next] <= t) {
      ++arrivals;
      ++next;
    }
    bool busy = false;
    for (size_t i = 0; i < next; ++i) busy |= t < starts[i] + length_s;
    f.step(t, busy ? 1 : 0, arrivals);
  }
}

TEST(HistogramPolicy, PeriodicRequestsArePreWarmedJustBeforeTheNextOne) {
  auto* raw = new HistogramPolicy(paper_options());
  FakeFleet f(std::unique_ptr<ScalingPolicy>(raw), shape(4, 4, 300));
  std::vector<double> starts;
  for (int i = 0; i < 30; ++i) starts.push_back(600.0 * i);  // every 10 minutes, 5 s each
  // Learning: 10 idle times of 595 s, each a cold start under the 300 s fixed keep-alive.
  drive(f, starts, 5, 600 * 11 + 1);
  EXPECT_EQ(f.cold_arrivals, 11);
  auto w = raw->windows();
  ASSERT_TRUE(w.representative) << w.why;
  // All idle times in bin 9 (9-10 min): pre-warm at 90% of 9 min less the start lead (the
  // fake fleet's instances take 5 s to start, and the policy measured that), keep until 110%
  // of 10 min.
  EXPECT_DOUBLE_EQ(w.prewarm_at_s, 540 * 0.9 - 5);
  EXPECT_DOUBLE_EQ(w.keep_until_s, 660);
  // One period seen closely: the request at 6600 ends at 6605.
  f.run(6601, 6670, 1, [](double t) { return t < 6605 ? 1 : 0; });
  EXPECT_EQ(f.live(), 0) << f.all_reasons();  // unloaded right after the request
  EXPECT_TRUE(f.saw_reason("histogram: unload after the last request")) << f.all_reasons();
  f.run(6670, 6605 + 481, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);
  f.step(6605 + 481, 0);
  EXPECT_EQ(f.live(), 1);  // pre-warmed ~1.9 min before the next request
  EXPECT_TRUE(f.saw_reason("histogram: pre-warm at 8 min idle")) << f.all_reasons();
  f.run(6605 + 482, 7200, 1, [](double) { return 0; });
  f.step(7200, 1, 1);
  EXPECT_EQ(f.cold_arrivals, 11);  // warm
  // A policy restored from that state: every request but the first finds a warm instance,
  // kept ~2 min of every 10 (from the pre-warm at 8 min to the next request, plus its 5 s and
  // the start).
  FakeFleet g(std::make_unique<HistogramPolicy>(paper_options()), shape(4, 4, 300));
  ASSERT_TRUE(g.policy().restore_state(raw->save_state()).is_ok());
  std::vector<double> later;
  for (int i = 0; i < 10; ++i) later.push_back(600.0 * i);
  drive(g, later, 5, 600 * 10);
  EXPECT_EQ(g.cold_arrivals, 1);  // only the first: nothing was running when it came
  EXPECT_LT(g.instance_seconds, 10 * 220);  // the fixed 300 s keep-alive would hold 305 s and still miss
  // A request that does not come: the instance goes at the end of the keep-alive window.
  FakeFleet h(std::make_unique<HistogramPolicy>(paper_options()), shape(4, 4, 300));
  ASSERT_TRUE(h.policy().restore_state(raw->save_state()).is_ok());
  h.step(0, 1, 1);
  h.run(1, 5 + 659, 1, [](double t) { return t < 5 ? 1 : 0; });
  EXPECT_EQ(h.live(), 1);
  h.run(5 + 659, 5 + 662, 1, [](double) { return 0; });
  EXPECT_EQ(h.live(), 0);
  EXPECT_TRUE(h.saw_reason("histogram: keep-alive window over at 11 min idle")) << h.all_reasons();
}

TEST(HistogramPolicy, IrregularRequestsFallBackToFixedKeepAlive) {
  auto* raw = new HistogramPolicy(paper_options());
  FakeFleet f(std::unique_ptr<ScalingPolicy>(raw), shape(4, 4, 300));
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> gap(60, 200 * 60);
  std::vector<double> starts{0};
  for (int i = 0; i < 60; ++i) starts.push_back(starts.back() + gap(rng));
  drive(f, starts, 5, starts.back() + 10, 2);
  auto w = raw->windows();
  EXPECT_FALSE(w.representative);
  EXPECT_NE(w.why.find("cv"), std::string::npos) << w.why;
  EXPECT_TRUE(f.saw_reason("histogram: not representative (cv")) << f.all_reasons();
  // Fixed keep-alive: the instance stays keep_alive after the last request (observed every 2 s).
  const double end = starts.back() + 5;
  f.run(starts.back() + 10, end + 296, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 1);
  f.run(end + 296, end + 304, 1, [](double) { return 0; });
  EXPECT_EQ(f.live(), 0);
}

TEST(HistogramPolicy, MostlyOutOfBoundsIdleTimesFallBack) {
  HistogramPolicy p(paper_options());
  IdleTimeHistogram h(60, 4 * 3600);
  for (int i = 0; i < 8; ++i) h.add(5 * 3600);
  for (int i = 0; i < 4; ++i) h.add(600);
  ASSERT_TRUE(p.restore_state(h.serialize()).is_ok());
  auto w = p.windows();
  EXPECT_FALSE(w.representative);
  EXPECT_NE(w.why.find("beyond 240 min"), std::string::npos) << w.why;
}

TEST(HistogramPolicy, ShortHeadKeepsTheInstanceInsteadOfStopping) {
  HistogramPolicy p(paper_options());
  IdleTimeHistogram h(60, 4 * 3600);
  for (int i = 0; i < 20; ++i) h.add(70);  // bin 1: pre-warm at 54 s - 30 s lead: not worth a stop
  ASSERT_TRUE(p.restore_state(h.serialize()).is_ok());
  auto w = p.windows();
  ASSERT_TRUE(w.representative);
  EXPECT_EQ(w.prewarm_at_s, 0);
  EXPECT_DOUBLE_EQ(w.keep_until_s, 132);
}

TEST(HistogramPolicy, DefaultsPadNothingAndCountIdleTimesPastAnHourAsOutOfBounds) {
  HistogramPolicy p({});
  IdleTimeHistogram h(60, 3600);
  for (int i = 0; i < 20; ++i) h.add(70);  // bin 1
  ASSERT_TRUE(p.restore_state(h.serialize()).is_ok());
  auto w = p.windows();
  ASSERT_TRUE(w.representative);
  EXPECT_EQ(w.prewarm_at_s, 0);
  EXPECT_DOUBLE_EQ(w.keep_until_s, 120);  // the bin's upper edge
  // Eight idle times of 90 minutes among 28: more than a quarter beyond the hour.
  for (int i = 0; i < 8; ++i) h.add(90 * 60);
  ASSERT_TRUE(p.restore_state(h.serialize()).is_ok());
  w = p.windows();
  EXPECT_FALSE(w.representative);
  EXPECT_NE(w.why.find("28.6% of idle times beyond 60 min"), std::string::npos) << w.why;
}

TEST(HistogramPolicy, StateSurvivesARestart) {
  auto a = make_scaling_policy("histogram", {}).value();
  FakeFleet f(std::move(a), shape(4, 4, 300));
  std::vector<double> starts;
  for (int i = 0; i < 15; ++i) starts.push_back(1200.0 * i);
  drive(f, starts, 5, 1200 * 14 + 1, 2);
  const std::string saved = f.policy().save_state();
  HistogramPolicy b({});
  ASSERT_TRUE(b.restore_state(saved).is_ok());
  EXPECT_EQ(b.save_state(), saved);
  auto w = b.windows();
  EXPECT_TRUE(w.representative) << w.why;
  EXPECT_EQ(b.histogram().count(19), 14u);  // 1195 s idle each time
  auto bad = b.restore_state("zs-idle-histogram v1\nbins x\n");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("restoring the histogram policy"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace zs::platform
