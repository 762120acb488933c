// The simulator against the real daemon: the same short bursty trace replayed through
// `zeroserve serve` (real worker processes, real HTTP) and through `zeroserve sim` with a
// calibration measured from that very run must agree on cold starts and instance-seconds.
// The service model is taken from the real instance so that the comparison is about the
// policy mechanics (queueing, keep-alive, scale to zero), not about the speed figures.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "gateway/http/http_client.h"
#include "test_util/process.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Sent {
  double at_s = 0;       // when it was sent, from the start of the replay
  double latency_s = 0;  // until the whole response
  double cold_ms = -1;   // X-Zeroserve-Cold-Start-Ms, -1 when absent
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int status = 0;
};

std::string timestamp(double s) {
  // The Azure LLM trace's format, on an arbitrary day.
  const int minutes = static_cast<int>(s / 60);
  char buf[64];
  std::snprintf(buf, sizeof buf, "2024-01-01 00:%02d:%010.7f", minutes, s - minutes * 60);
  return buf;
}

std::string state_of(const std::string& address, const std::string& name) {
  auto r = gateway::http_request("GET", address, "/v1/models");
  if (!r.is_ok()) return "?";
  json all = json::parse(r->body, nullptr, false);
  if (!all.contains("data")) return "?";
  for (const auto& m : all["data"])
    if (m["id"] == name) return m.value("state", "?");
  return "?";
}

TEST(SimFidelity, ColdStartsAndInstanceSecondsMatchTheRealDaemon) {
  zs::testing::TempDir dir;
  const std::string yaml = "devices:\n  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n"
                           "deployments:\n  - name: story\n    model: " + zs::testing::golden_model("stories260K.gguf") +
                           "\n    slots: 2\n    ctx: 512\n    threads: 1\n    max_instances: 1\n    keep_alive: 2s\n"
                           "    memory: 256MiB\n    max_queue: 64\n"
                           "    autoscale: {policy: concurrency}\n";  // the policy the simulator replays below
  const std::string config = dir.file("zeroserve.yaml");
  std::ofstream(config) << yaml;
  zs::testing::ChildProcess serve({"/usr/bin/env", "XDG_STATE_HOME=" + dir.file("state"),
                                   "XDG_CACHE_HOME=" + dir.file("cache"), ZS_BINARY, "serve", "--config", config,
                                   "--listen", "127.0.0.1:0"});
  auto address = serve.wait_ready(std::chrono::seconds(30));
  ASSERT_TRUE(address.has_value());

  // 40 requests over ~20 s: five bursts of eight, 0.1 s apart, 4.5 s between bursts, so that
  // each burst finds the deployment scaled to zero (keep_alive 2 s).
  std::vector<double> plan;
  for (int b = 0; b < 5; ++b)
    for (int i = 0; i < 8; ++i) plan.push_back(b * 4.5 + i * 0.1);
  std::vector<Sent> sent(plan.size());
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < plan.size(); ++i) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(plan[i])));
      Sent& s = sent[i];
      const auto start = Clock::now();
      s.at_s = std::chrono::duration<double>(start - t0).count();
      json body = {{"model", "story"}, {"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}};
      auto r = gateway::http_request("POST", *address, "/v1/completions", body.dump(), {}, std::chrono::seconds(60));
      s.latency_s = std::chrono::duration<double>(Clock::now() - start).count();
      if (!r.is_ok()) return;
      s.status = r->status;
      const std::string cold = r->header("X-Zeroserve-Cold-Start-Ms");
      if (!cold.empty()) s.cold_ms = std::stod(cold);
      json j = json::parse(r->body, nullptr, false);
      if (j.contains("usage")) {
        s.prompt_tokens = j["usage"].value("prompt_tokens", 0);
        s.completion_tokens = j["usage"].value("completion_tokens", 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : sent) ASSERT_EQ(s.status, 200);
  // Every instance stopped, so that the ledger's instance time is complete.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (state_of(*address, "story") != "idle" && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto costs = gateway::http_request("GET", *address, "/admin/costs");
  ASSERT_TRUE(costs.is_ok());
  json c = json::parse(costs->body);
  ASSERT_EQ(c["deployments"].size(), 1u) << costs->body;
  const double real_seconds = c["deployments"][0]["instance_seconds"].get<double>();
  const int real_cold = c["deployments"][0]["cold_starts"].get<int>();

  // Calibration from the real run: the cold start from the responses that waited for one (the
  // wait includes the queueing before the instance is asked for, as the simulator's does);
  // decode speed from the warm requests' latency.
  std::vector<double> cold, warm;
  for (const auto& s : sent) (s.cold_ms >= 0 ? cold : warm).push_back(s.cold_ms >= 0 ? s.cold_ms / 1000 : s.latency_s);
  ASSERT_FALSE(cold.empty());
  ASSERT_FALSE(warm.empty());
  std::sort(cold.begin(), cold.end());
  std::sort(warm.begin(), warm.end());
  const double cold_start_s = cold[cold.size() / 2];
  const double warm_s = std::max(1e-3, warm[warm.size() / 4]);  // a lower quartile: latency without queueing
  const double per_stream = 8 / warm_s;
  json cal = {{"format", "zeroserve-calibration/1"},
              {"source", "measured by sim_fidelity_test from the real daemon"},
              {"profiles",
               {{"cpu",
                 {{"cold_start_s", cold_start_s},
                  {"prefill_tokens_per_s", 1e6},
                  {"memory_bytes", 256 << 20},
                  {"decode_tokens_per_s", json::array({json::array({1, per_stream}), json::array({2, 2 * per_stream})})}}}}}};
  std::ofstream(dir.file("calibration.json")) << cal.dump(2);
  {
    std::ofstream trace(dir.file("trace.csv"));
    trace << "TIMESTAMP,ContextTokens,GeneratedTokens";
    std::vector<Sent> by_time = sent;
    std::sort(by_time.begin(), by_time.end(), [](const Sent& a, const Sent& b) { return a.at_s < b.at_s; });
    for (const auto& s : by_time) trace << "\n" << timestamp(s.at_s) << "," << s.prompt_tokens << "," << s.completion_tokens;
  }
  const double last = std::max_element(sent.begin(), sent.end(), [](auto& a, auto& b) { return a.at_s < b.at_s; })->at_s;
  const std::string out = dir.file("sim");
  const std::string cmd = std::string(ZS_BINARY) + " sim --quiet --trace " + dir.file("trace.csv") + " --config " + config +
                          " --calibration " + dir.file("calibration.json") + " --policy concurrency --no-loop --duration " +
                          std::to_string(static_cast<int>(last) + 15) + " --out " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  json report = json::parse(std::ifstream(out + "/report.json"));
  ASSERT_EQ(report["policies"].size(), 1u);
  const auto& p = report["policies"][0];
  const double sim_seconds = p["instance_seconds"].get<double>();
  const int sim_cold = p["cold_starts"].get<int>();
  std::printf("fidelity: real %d cold starts, %.3f instance-s; simulated %d cold starts, %.3f instance-s "
              "(cold start %.3f s, warm request %.3f s)\n",
              real_cold, real_seconds, sim_cold, sim_seconds, cold_start_s, warm_s);
  EXPECT_EQ(p["served"].get<int>(), 40);
  EXPECT_GE(real_cold, 5);  // every burst found the deployment at zero
  EXPECT_LE(std::abs(sim_cold - real_cold), std::max(0.1 * real_cold, 0.0)) << "cold starts";
  EXPECT_NEAR(sim_seconds, real_seconds, 0.1 * real_seconds) << "instance-seconds";
}

}  // namespace
}  // namespace zs
