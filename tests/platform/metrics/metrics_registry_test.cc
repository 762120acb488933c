#include "platform/metrics/metrics_registry.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace zs::platform {
namespace {

TEST(MetricsRegistry, RendersTheTextFormat) {
  MetricsRegistry r;
  r.counter("zs_requests_total", "Requests.", {{"status", "200"}}).add(3);
  r.counter("zs_requests_total", "Requests.", {{"status", "400"}}).add();
  r.gauge("zs_running", "Running sequences.").set(2);
  auto& h = r.histogram("zs_ttft_seconds", "Time to first token.", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const std::string text = r.render();
  EXPECT_NE(text.find("# TYPE zs_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("zs_requests_total{status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("zs_requests_total{status=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("zs_running 2\n"), std::string::npos);
  EXPECT_NE(text.find("zs_ttft_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("zs_ttft_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("zs_ttft_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("zs_ttft_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("zs_ttft_seconds_sum 5.55\n"), std::string::npos);
}

TEST(MetricsRegistry, EscapesLabelValuesAndRunsCollectors) {
  MetricsRegistry r;
  Gauge& g = r.gauge("g", "A gauge.", {{"k", "a\"b\\c\nd"}});
  r.on_collect([&] { g.set(42); });
  const std::string text = r.render();
  EXPECT_NE(text.find("g{k=\"a\\\"b\\\\c\\nd\"} 42\n"), std::string::npos) << text;
}

TEST(MetricsRegistry, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry r;
  Counter& c = r.counter("c", "C.");
  Histogram& h = r.histogram("h", "H.", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.add();
        h.observe(0.5);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000);
  EXPECT_EQ(h.count(), 40000u);
}

}  // namespace
}  // namespace zs::platform

#include "platform/metrics/process_memory.h"

namespace zs::platform {
namespace {

TEST(ProcessMemory, TheResidentSetSizeIsPositive) {
  auto rss = process_resident_memory_bytes();
  ASSERT_TRUE(rss.has_value());
  EXPECT_GT(*rss, 0u);
}

TEST(ProcessMemory, ATrackedRegistryRendersProcessResidentMemoryBytes) {
  MetricsRegistry r;
  track_process_memory(r);
  const std::string text = r.render();
  EXPECT_NE(text.find("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "), std::string::npos)
      << text;
  EXPECT_GT(r.gauge("process_resident_memory_bytes", "").value(), 0);
}

}  // namespace
}  // namespace zs::platform
