// The simulator against the real daemon: three traffic shapes (steady, bursty, diurnal on a
// compressed clock), each on its own deployment, replayed through `zeroserve serve` (real
// worker processes, real HTTP) and then through `zeroserve sim` with one calibration measured
// from that very run, must agree within 5% on cold starts and instance-seconds and within 10%
// on TTFT p50. The service model is taken from the real instances so that the comparison is
// about the fleet's mechanics (queueing, keep-alive, scale to zero, slots), which both run
// through the same FleetCore, not about the speed figures. The shapes are replayed one after
// another, so that one shape's cold starts do not slow another's requests (the simulator keeps
// deployments apart); the test runs serially (tests/e2e/serial) for the same reason.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <map>
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
  double ttft_s = -1;    // until the first token
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

// Sends one streaming completion to `model` at t0 + at and records it in `s`.
void send(const std::string& address, const std::string& model, Clock::time_point t0, double at, Sent& s) {
  std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at)));
  const auto start = Clock::now();
  s.at_s = std::chrono::duration<double>(start - t0).count();
  json body = {{"model", model}, {"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0},
               {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  std::string events;
  auto r = gateway::http_stream(
      "POST", address, "/v1/completions", body.dump(), {},
      [&](std::string_view chunk) {
        if (s.ttft_s < 0 && chunk.find("\"text\"") != std::string_view::npos)
          s.ttft_s = std::chrono::duration<double>(Clock::now() - start).count();
        events.append(chunk);
        return true;
      },
      std::chrono::seconds(60));
  s.latency_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!r.is_ok()) return;
  s.status = r->status;
  const std::string cold = r->header("X-Zeroserve-Cold-Start-Ms");
  if (!cold.empty()) s.cold_ms = std::stod(cold);
  const size_t u = events.rfind("\"usage\"");
  if (u != std::string::npos) {
    const size_t line_start = events.rfind("data: ", u);
    json j = json::parse(events.substr(line_start + 6, events.find('\n', u) - line_start - 6), nullptr, false);
    if (j.is_object() && j["usage"].is_object()) {
      s.prompt_tokens = j["usage"].value("prompt_tokens", 0);
      s.completion_tokens = j["usage"].value("completion_tokens", 0);
    }
  }
}

// Arrival times (s) of one shape; each has at least 40 gaps longer than the keep-alive, so
// at least 40 cold starts.
std::vector<double> plan_of(const std::string& shape) {
  std::vector<double> at;
  if (shape == "steady") {
    for (int i = 0; i < 60; ++i) at.push_back(0.05 + i * 0.7);  // one every 0.7 s
  } else if (shape == "bursty") {
    // Five at once, then quiet: all five wait for the cold start; four get a slot, the fifth
    // waits for one of them to finish.
    for (int b = 0; b < 50; ++b)
      for (int i = 0; i < 5; ++i) at.push_back(0.1 + b * 0.7 + i * 0.001);
  } else {
    // diurnal: the gap swings between 0.05 s (the "day") and 1.25 s (the "night"), ten times:
    // about 80 cold starts. Gaps near the keep-alive boundary go either way in the real daemon
    // (by its tick's phase), so the 5% on cold starts needs a count this size.
    for (double t = 0.15; t < 89;) {
      at.push_back(t);
      t += 0.05 + 1.2 * (1 + std::cos(2 * M_PI * t / 9)) / 2;
    }
  }
  return at;
}

struct Measured {
  double instance_seconds = 0;
  int cold_starts = 0;
  double ttft_p50 = 0;
};

// Seconds from SIGTERM to the exit of an idle worker of the test model (median of three).
double worker_exit_s(const zs::testing::TempDir& dir) {
  std::vector<double> exits;
  for (int i = 0; i < 3; ++i) {
    zs::testing::ChildProcess w({ZS_BINARY, "worker", "--model", zs::testing::golden_model("stories260K.gguf"), "--name",
                                 "x", "--listen", "unix:" + dir.file("exit-" + std::to_string(i) + ".sock"), "--slots", "4",
                                 "--ctx", "512", "--threads", "1"});
    if (!w.wait_ready(std::chrono::seconds(30))) continue;
    const auto t0 = Clock::now();
    w.signal(SIGTERM);
    if (w.wait_exit(std::chrono::seconds(10))) exits.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  if (exits.empty()) return 0;
  std::sort(exits.begin(), exits.end());
  return exits[exits.size() / 2];
}

TEST(SimFidelity, ThreeTrafficShapesMatchTheRealDaemon) {
  zs::testing::TempDir dir;
  // The daemon bills an instance until it sees the exit, which it does as it happens (pidfd):
  // the worker's own exit time (the simulator already decides stops half a tick late).
  const double stop_s = worker_exit_s(dir);
  const std::vector<std::string> shapes = {"steady", "bursty", "diurnal"};
  auto deployment = [&](const std::string& name) {
    return "  - name: " + name + "\n    model: " + zs::testing::golden_model("stories260K.gguf") +
           "\n    slots: 4\n    ctx: 512\n    threads: 1\n    max_instances: 1\n    keep_alive: 300ms\n"
           "    memory: 256MiB\n    max_queue: 64\n    autoscale: {policy: fixed}\n";
  };
  const std::string devices = "devices:\n  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n";
  std::string yaml = devices + "deployments:\n";
  for (const auto& s : shapes) yaml += deployment(s);
  yaml += deployment("probe");  // for the calibration, below
  const std::string config = dir.file("zeroserve.yaml");
  std::ofstream(config) << yaml;
  zs::testing::ChildProcess serve({"/usr/bin/env", "XDG_STATE_HOME=" + dir.file("state"),
                                   "XDG_CACHE_HOME=" + dir.file("cache"), ZS_BINARY, "serve", "--config", config,
                                   "--listen", "127.0.0.1:0"});
  auto address = serve.wait_ready(std::chrono::seconds(30));
  ASSERT_TRUE(address.has_value());

  // The three shapes one after another, each on its own deployment, in four rounds of a
  // quarter of each, so that a slow spell of the machine does not fall on one shape only.
  // Every request streams, so that the client sees its first token.
  std::map<std::string, std::vector<Sent>> sent;
  {
    constexpr int kRounds = 4;
    std::map<std::string, std::vector<double>> plans;
    for (const auto& s : shapes) {
      plans[s] = plan_of(s);
      sent[s].resize(plans[s].size());
    }
    const auto t0 = Clock::now() + std::chrono::milliseconds(200);
    double offset = 0;  // where the next quarter starts, from t0
    for (int round = 0; round < kRounds; ++round) {
      for (const auto& shape : shapes) {
        const std::vector<double>& plan = plans[shape];
        const double span = plan.back() + 0.1, from = span * round / kRounds, to = span * (round + 1) / kRounds;
        std::vector<std::thread> threads;
        for (size_t i = 0; i < plan.size(); ++i)
          if (plan[i] >= from && plan[i] < to)
            threads.emplace_back(
                [&, shape, i, at = offset + plan[i] - from] { send(*address, shape, t0, at, sent[shape][i]); });
        for (auto& t : threads) t.join();
        offset += to - from + 0.5;  // the deployment back at zero before the next one's quarter
      }
    }
  }
  // What requests cost each other in an instance: a warm instance of its own gets, every
  // 0.12 s, one request or four at once. Four at once each pay the per-request work that runs
  // one at a time (the worker's request handling and prompt step), so their mean time to
  // first token is 1.5 such costs above a lone one's (the service model's prefill queue).
  std::vector<Sent> lone(20), grouped(80);
  {
    Sent first;
    send(*address, "probe", Clock::now(), 0, first);  // the cold start, not measured
    const auto t0 = Clock::now() + std::chrono::milliseconds(50);
    std::vector<std::thread> threads;
    for (int r = 0; r < 40; ++r) {
      const double at = r * 0.12;
      if (r % 2 == 0) {
        threads.emplace_back([&, at, r] { send(*address, "probe", t0, at, lone[r / 2]); });
      } else {
        for (int k = 0; k < 4; ++k)
          threads.emplace_back([&, at, r, k] { send(*address, "probe", t0, at, grouped[r / 2 * 4 + k]); });
      }
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& list : {lone, grouped})
    for (const auto& s : list) ASSERT_EQ(s.status, 200);
  for (const auto& [shape, list] : sent)
    for (const auto& s : list) {
      ASSERT_EQ(s.status, 200) << shape;
      ASSERT_GT(s.completion_tokens, 0) << shape;
      ASSERT_GE(s.ttft_s, 0) << shape;
    }
  // Every instance stopped, so that the ledger's instance time is complete.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (const auto& shape : shapes)
    while (state_of(*address, shape) != "idle" && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto costs = gateway::http_request("GET", *address, "/admin/costs");
  ASSERT_TRUE(costs.is_ok());
  const json c = json::parse(costs->body);
  ASSERT_EQ(c["deployments"].size(), shapes.size() + 1) << costs->body;

  // The calibration, from this run (the same model on the same machine for every shape):
  // - the prompt's step (prefill_tokens_per_s): the per-request work that runs one at a time,
  //   from the probe above;
  // - the request's overhead: the time to first token of the requests that found an instance
  //   ready (every shape's), less that step, as quantiles: real ones vary by milliseconds, and
  //   which of them the p50 lands on depends on how many requests were cold;
  // - the cold start: what it adds to time to first token, from the requests that started an
  //   instance (cold, and the first of their shape for 0.1 s): their quantiles less the warm
  //   median, so that the first pass of a fresh worker counts. Each shape's from its own: on
  //   two cores a start slows with the requests that arrive with it (five requests' handling
  //   competes with the worker's start and first touch of its KV cache), which the service
  //   model does not represent. The bursty shape's p50 is still not what it is calibrated on:
  //   it falls among the four that get a slot at once, after the first;
  // - decode: the time after the first token.
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const int prompt_tokens = std::max(1, sent["steady"][0].prompt_tokens);
  std::vector<double> lone_ttft, group_mean;
  for (const auto& q : lone) lone_ttft.push_back(q.ttft_s);
  for (size_t g = 0; g < grouped.size(); g += 4) {
    double sum = 0;
    for (size_t k = g; k < g + 4; ++k) sum += grouped[k].ttft_s;
    group_mean.push_back(sum / 4);
  }
  const double step_s = std::max(1e-5, (median(group_mean) - median(lone_ttft)) / 1.5);
  const double prefill_tokens_per_s = prompt_tokens / step_s;
  std::vector<double> warm, decode;
  std::map<std::string, std::vector<double>> starters;
  for (const auto& [shape, list] : sent) {
    std::vector<Sent> by_time = list;
    std::sort(by_time.begin(), by_time.end(), [](const Sent& a, const Sent& b) { return a.at_s < b.at_s; });
    for (size_t i = 0; i < by_time.size(); ++i) {
      const Sent& s = by_time[i];
      if (s.cold_ms < 0) warm.push_back(s.ttft_s);
      else if (i == 0 || s.at_s - by_time[i - 1].at_s >= 0.1) starters[shape].push_back(s.ttft_s);
      decode.push_back(s.latency_s - s.ttft_s);
    }
  }
  ASSERT_GE(warm.size(), 50u);
  std::sort(warm.begin(), warm.end());
  auto quantiles = [](std::vector<double> sorted, double minus) {
    std::sort(sorted.begin(), sorted.end());
    json q = json::array();
    for (size_t k = 0; k <= 20; ++k)
      q.push_back(std::max(0.0, sorted[std::min(sorted.size() - 1, sorted.size() * k / 20)] - minus));
    return q;
  };
  const json overhead = quantiles(warm, step_s);
  const double per_stream = 7 / std::max(1e-3, median(decode));
  std::printf("calibration: overhead p50 %.2f ms (p5 %.2f, p95 %.2f), prompt step %.2f ms, decode %.0f tok/s per "
              "stream, stop %.1f ms\n",
              overhead[10].get<double>() * 1000, overhead[1].get<double>() * 1000, overhead[19].get<double>() * 1000,
              step_s * 1000, per_stream, stop_s * 1000);
  // Writes the calibration for one shape; returns its path.
  auto calibration_for = [&](const std::string& shape) {
  const json cold_start = quantiles(starters[shape], median(warm));
  const json cal = {{"format", "zeroserve-calibration/1"},
                    {"source", "measured by sim_fidelity_test from the real daemon"},
                    {"profiles",
                     {{"cpu",
                       {{"cold_start_s", cold_start},
                        {"stop_s", stop_s},
                        {"request_overhead_s", overhead},
                        {"prefill_tokens_per_s", prefill_tokens_per_s},
                        {"memory_bytes", 256 << 20},
                        {"decode_tokens_per_s",
                         json::array({json::array({1, per_stream}), json::array({4, 4 * per_stream})})}}}}}};
  const std::string path = dir.file(shape + "-calibration.json");
  std::ofstream(path) << cal.dump(2);
  std::printf("calibration of %s: cold start p50 %.1f ms from %zu starts\n", shape.c_str(),
              cold_start[10].get<double>() * 1000, starters[shape].size());
  return path;
  };

  for (const auto& shape : shapes) {
    SCOPED_TRACE(shape);
    ASSERT_GE(starters[shape].size(), 40u);
    const std::string calibration = calibration_for(shape);
    const std::vector<Sent>& list = sent[shape];
    Measured real;
    for (const auto& d : c["deployments"])
      if (d.value("deployment", "") == shape) {
        real.instance_seconds = d["instance_seconds"].get<double>();
        real.cold_starts = d["cold_starts"].get<int>();
      }
    std::vector<double> ttft;
    for (const auto& s : list) ttft.push_back(s.ttft_s);
    std::sort(ttft.begin(), ttft.end());
    real.ttft_p50 = ttft[ttft.size() / 2];

    {
      std::ofstream trace(dir.file(shape + ".csv"));
      trace << "TIMESTAMP,ContextTokens,GeneratedTokens";
      std::vector<Sent> by_time = list;
      std::sort(by_time.begin(), by_time.end(), [](const Sent& a, const Sent& b) { return a.at_s < b.at_s; });
      for (const auto& s : by_time) trace << "\n" << timestamp(s.at_s) << "," << s.prompt_tokens << "," << s.completion_tokens;
    }
    std::ofstream(dir.file(shape + ".yaml")) << devices + "deployments:\n" + deployment(shape);
    const double last = std::max_element(list.begin(), list.end(), [](auto& a, auto& b) { return a.at_s < b.at_s; })->at_s;
    const std::string out = dir.file(shape + "-sim");
    const std::string cmd = std::string(ZS_BINARY) + " sim --quiet --trace " + dir.file(shape + ".csv") + " --config " +
                            dir.file(shape + ".yaml") + " --calibration " + calibration +
                            " --policy fixed --no-loop --duration " + std::to_string(static_cast<int>(last) + 15) +
                            " --out " + out;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    json report = json::parse(std::ifstream(out + "/report.json"));
    ASSERT_EQ(report["policies"].size(), 1u);
    const auto& p = report["policies"][0];
    Measured sim;
    sim.instance_seconds = p["instance_seconds"].get<double>();
    sim.cold_starts = p["cold_starts"].get<int>();
    sim.ttft_p50 = p["ttft_s"]["p50"].get<double>();
    // Quartiles of both, to show where a p50 that disagrees came from.
    const auto& cdf = p["ttft_cdf_s"];
    ASSERT_EQ(cdf.size(), 100u);
    std::printf("fidelity %s: real %d cold starts, %.3f instance-s, TTFT p25/p50/p75 %.1f/%.1f/%.1f ms; "
                "simulated %d, %.3f, %.1f/%.1f/%.1f ms\n",
                shape.c_str(), real.cold_starts, real.instance_seconds, ttft[ttft.size() / 4] * 1000,
                real.ttft_p50 * 1000, ttft[ttft.size() * 3 / 4] * 1000, sim.cold_starts, sim.instance_seconds,
                cdf[24].get<double>() * 1000, sim.ttft_p50 * 1000, cdf[74].get<double>() * 1000);
    EXPECT_EQ(p["served"].get<size_t>(), list.size());
    EXPECT_GE(real.cold_starts, 40);
    EXPECT_LE(std::abs(sim.cold_starts - real.cold_starts), 0.05 * real.cold_starts) << "cold starts";
    EXPECT_NEAR(sim.instance_seconds, real.instance_seconds, 0.05 * real.instance_seconds) << "instance-seconds";
    EXPECT_NEAR(sim.ttft_p50, real.ttft_p50, 0.10 * real.ttft_p50) << "TTFT p50";
  }
}

}  // namespace
}  // namespace zs
