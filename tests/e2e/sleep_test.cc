// Sleeping instances end to end: a real worker told to sleep gives back its KV cache (its RSS
// drops) and wakes for the next request with the same answer; through `serve`, an idle instance
// goes to sleep after sleep_after, a request wakes it (X-Zeroserve-Start: wake), it stops after
// keep_alive, and a sleeping worker that dies is replaced by a cold start.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "serve_fixture.h"

namespace zs::testing {
namespace {

// Counted page by page (smaps_rollup), not VmRSS's per-CPU approximation.
uint64_t rss_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Rss:", 0) == 0) return std::stoull(line.substr(4)) * 1024;
  return 0;
}

json long_chat(const std::string& model, const std::string& seed_text, int max_tokens) {
  std::string story;
  for (int i = 0; i < 25; ++i) story += "Lily had a red ball and Tom had a blue kite in the park. ";
  return {{"model", model},
          {"messages", json::array({{{"role", "user"}, {"content", seed_text + " " + story}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0}};
}

TEST(WorkerSleep, ASleepingWorkerGivesBackItsCacheAndWakesForTheNextRequestWithTheSameAnswer) {
  WorkerProcess w({"--ctx", "8192", "--slots", "4"});
  ASSERT_FALSE(w.address().empty());
  std::string answers[3];
  for (int i = 0; i < 3; ++i) {  // distinct prompts: each fills cache blocks of its own
    auto r = w.post("/v1/chat/completions", long_chat("m", std::to_string(i), 8).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.header("X-Zeroserve-Wake-Ms").empty()) << "awake: nothing to wake";
    answers[i] = json::parse(r.body)["choices"][0]["message"]["content"];
  }
  const uint64_t before = rss_of(w.process().pid());
  auto slept = w.post("/internal/sleep", "");
  ASSERT_EQ(slept.status, 200) << slept.body;
  const uint64_t released = json::parse(slept.body)["released_bytes"];
  EXPECT_GT(released, 0u);
  const uint64_t after = rss_of(w.process().pid());
  // Three prompts of ~330 tokens of a model with 5 layers of 64-wide keys and values: about
  // 1,000 positions x 5 x 2 x 64 x 2 bytes = 1.3 MB were touched and must be gone.
  ASSERT_LT(after, before);
  EXPECT_GE(before - after, 1'000'000u) << before << " -> " << after;

  auto woke = w.post("/v1/chat/completions", long_chat("m", "0", 8).dump());
  ASSERT_EQ(woke.status, 200) << woke.body;
  ASSERT_FALSE(woke.header("X-Zeroserve-Wake-Ms").empty());
  EXPECT_GE(std::stod(woke.header("X-Zeroserve-Wake-Ms")), 0.0);
  EXPECT_EQ(json::parse(woke.body)["choices"][0]["message"]["content"], answers[0]);
  auto warm = w.post("/v1/chat/completions", long_chat("m", "1", 8).dump());
  EXPECT_TRUE(warm.header("X-Zeroserve-Wake-Ms").empty());
  EXPECT_EQ(json::parse(warm.body)["choices"][0]["message"]["content"], answers[1]);
  const std::string metrics = w.get("/metrics").body;
  EXPECT_EQ(metric_in(metrics, "zs_worker_first_step_seconds_count{start=\"wake\"}"), 1);
  EXPECT_EQ(metric_in(metrics, "zs_worker_sleeps_total"), 1);
}

TEST(WorkerSleep, ABusyWorkerRefusesToSleepWith409AndKeepsServing) {
  WorkerProcess w({"--ctx", "4096"});
  ASSERT_FALSE(w.address().empty());
  std::atomic<bool> first_chunk{false};
  std::thread streamer([&] {
    json body = long_chat("m", "x", 300);
    body["stream"] = true;
    auto r = gateway::http_stream("POST", w.address(), "/v1/chat/completions", body.dump(), {},
                                  [&](std::string_view) {
                                    first_chunk = true;
                                    return true;
                                  },
                                  std::chrono::seconds(120));
    EXPECT_TRUE(r.is_ok());
  });
  ASSERT_TRUE(wait_for([&] { return first_chunk.load(); }, std::chrono::seconds(30)));
  auto refused = w.post("/internal/sleep", "");
  streamer.join();
  EXPECT_EQ(refused.status, 409) << refused.body;
  auto after = w.post("/v1/chat/completions", chat("m", 4).dump());
  EXPECT_EQ(after.status, 200);
  EXPECT_TRUE(after.header("X-Zeroserve-Wake-Ms").empty()) << "it never slept";
}

TEST(ServeSleep, AnIdleInstanceSleepsARequestWakesItAndKeepAliveStopsIt) {
  Serve s("devices:\n  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n"
          "deployments:\n" + stories_deployment("story", "    sleep_after: 1s\n    keep_alive: 6s\n"));
  ASSERT_FALSE(s.address().empty());
  auto cold = s.post(chat("story", 4));
  ASSERT_EQ(cold.status, 200) << cold.body;
  EXPECT_EQ(cold.header("X-Zeroserve-Start").rfind("cold; ms=", 0), 0u) << cold.header("X-Zeroserve-Start");
  EXPECT_FALSE(cold.header("X-Zeroserve-Cold-Start-Ms").empty()) << "kept for existing clients";
  auto warm = s.post(chat("story", 4));
  EXPECT_EQ(warm.header("X-Zeroserve-Start").rfind("warm; ms=", 0), 0u) << warm.header("X-Zeroserve-Start");

  ASSERT_TRUE(wait_for([&] { return s.state_of("story") == "sleeping"; }, std::chrono::seconds(20)));
  const json listed = s.models();
  EXPECT_EQ(listed["data"][0]["instances"]["sleeping"], 1);
  auto woke = s.post(chat("story", 4));
  ASSERT_EQ(woke.status, 200) << woke.body;
  EXPECT_EQ(woke.header("X-Zeroserve-Start").rfind("wake; ms=", 0), 0u) << woke.header("X-Zeroserve-Start");
  EXPECT_TRUE(woke.header("X-Zeroserve-Cold-Start-Ms").empty());
  EXPECT_EQ(json::parse(woke.body)["choices"][0]["message"]["content"],
            json::parse(cold.body)["choices"][0]["message"]["content"]);
  // Streamed answers carry it too.
  ASSERT_TRUE(wait_for([&] { return s.state_of("story") == "sleeping"; }, std::chrono::seconds(20)));
  std::string start_header;
  auto client = gateway::HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok());
  auto streamed = client.value()->stream(
      "POST", "/v1/chat/completions", chat("story", 4, true).dump(), {}, [](std::string_view) { return true; },
      std::chrono::seconds(60), [&](const gateway::HttpResponse& head) { start_header = head.header("X-Zeroserve-Start"); });
  ASSERT_TRUE(streamed.is_ok());
  EXPECT_EQ(streamed->header("X-Zeroserve-Start"), start_header);
  EXPECT_EQ(start_header.rfind("wake; ms=", 0), 0u) << start_header;

  // Asleep past keep_alive (counted from the last request): stopped, back to zero.
  ASSERT_TRUE(wait_for([&] { return s.state_of("story") == "sleeping"; }, std::chrono::seconds(20)));
  ASSERT_TRUE(wait_for([&] { return s.state_of("story") == "idle"; }, std::chrono::seconds(30)));
  auto metrics = gateway::http_request("GET", s.address(), "/metrics");
  ASSERT_TRUE(metrics.is_ok());
  EXPECT_EQ(metric_in(metrics->body, "zs_gateway_starts_total{deployment=\"story\",start=\"wake\"}"), 2);
  EXPECT_EQ(metric_in(metrics->body, "zs_gateway_starts_total{deployment=\"story\",start=\"cold\"}"), 1);
  EXPECT_EQ(metric_in(metrics->body, "zs_instance_start_phase_seconds_count{phase=\"load\"}"), 1);
  // The first forward pass of the fresh process is the warm-up part of the breakdown; passes
  // after a wake are not (the process is not fresh).
  EXPECT_EQ(metric_in(metrics->body, "zs_instance_start_phase_seconds_count{phase=\"first_pass\"}"), 1);
  EXPECT_GT(metric_in(metrics->body, "zs_instance_start_phase_seconds_sum{phase=\"first_pass\"}"), 0);
  // The ledger billed the sleeping time separately.
  json c;
  ASSERT_TRUE(wait_for([&] {
    auto costs = gateway::http_request("GET", s.address(), "/admin/costs");
    if (!costs.is_ok()) return false;
    c = json::parse(costs->body);
    return c["deployments"].size() == 1 && c["deployments"][0]["sleeping_seconds"].get<double>() > 0.5;
  }, std::chrono::seconds(10))) << c.dump();
  EXPECT_GT(c["deployments"][0]["busy_seconds"].get<double>(), 0.0);
}

TEST(ServeSleep, AWorkerThatDiesWhileAsleepIsReplacedByAColdStart) {
  Serve s("deployments:\n" + stories_deployment("story", "    sleep_after: 1s\n    keep_alive: 60s\n"));
  ASSERT_FALSE(s.address().empty());
  ASSERT_EQ(s.post(chat("story", 4)).status, 200);
  ASSERT_TRUE(wait_for([&] { return s.state_of("story") == "sleeping"; }, std::chrono::seconds(20)));
  const pid_t pid = s.worker_of("story");
  ASSERT_GT(pid, 0);
  kill(pid, SIGKILL);
  ASSERT_TRUE(wait_for([&] { return s.state_of("story") == "idle"; }, std::chrono::seconds(10)));
  auto r = s.post(chat("story", 4));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("X-Zeroserve-Start").rfind("cold; ms=", 0), 0u) << r.header("X-Zeroserve-Start");
}

}  // namespace
}  // namespace zs::testing
