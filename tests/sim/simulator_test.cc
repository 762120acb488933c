#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "platform/config/config.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/workload.h"
#include "test_util/temp_dir.h"

namespace zs::sim {
namespace {

platform::Config config(const std::string& deployment_extra, const std::string& memory = "4GiB") {
  const std::string yaml = "devices:\n  - name: cpu0\n    kind: cpu\n    memory: " + memory +
                           "\n    price_per_second: 0.01\n"
                           "deployments:\n  - name: m\n    model: m.gguf\n    memory: 1GiB\n" + deployment_extra;
  auto c = platform::parse_config(yaml, "test.yaml", ".");
  EXPECT_TRUE(c) << c.status().message();
  return c.value();
}

// A service model where a request takes exactly `service_s`: no prompt, one decode step.
Calibration fixed_service(double cold_start_s, double tokens_per_s) {
  Calibration c;
  ServiceProfile p;
  p.cold_start_s = cold_start_s;
  p.stop_s = 0;  // exits at once: instance time is exactly start to stop
  p.prefill_tokens_per_s = 1e9;
  p.decode = {{1, tokens_per_s}, {64, 64 * tokens_per_s}};  // every sequence at the same speed
  c.profiles["cpu"] = p;
  return c;
}

Trace trace_of(std::vector<double> arrivals, uint32_t output_tokens, double span) {
  Trace t;
  t.name = "test";
  t.format = "synthetic";
  for (double a : arrivals) t.requests.push_back({a, 0, 0, output_tokens});
  t.span_s = span;
  return t;
}

PolicySpec spec(const std::string& text) {
  auto s = parse_policy_spec(text);
  EXPECT_TRUE(s) << s.status().message();
  return s.value();
}

RunResult run(const Workload& w, const std::string& policy) {
  RunOptions o;
  o.spec = spec(policy);
  auto r = simulate(w, o);
  EXPECT_TRUE(r) << r.status().message();
  return r.value();
}

TEST(Simulator, ScalesToZeroBetweenBurstsWithExactInstanceTime) {
  // Two requests of 1 s (output 11 tokens at 10 tok/s after the first), 10 s apart;
  // cold start 0.5 s, keep_alive 2 s: each burst costs 0.5 + 1 + 2 = 3.5 instance-seconds, and
  // the stop lands on the Fleet's next tick, half a tick (10 ms) late on average.
  auto w = build_workload(config("    keep_alive: 2s\n    slots: 2\n"), {trace_of({0, 10}, 11, 20)}, fixed_service(0.5, 10), {});
  ASSERT_TRUE(w) << w.status().message();
  auto r = run(w.value(), "fixed");
  EXPECT_EQ(r.served, 2u);
  EXPECT_EQ(r.cold_starts, 2u);
  EXPECT_EQ(r.cold_requests, 2u);
  EXPECT_NEAR(r.instance_seconds, 7.02, 1e-3);
  EXPECT_NEAR(r.cost, 0.0702, 1e-5);
  // A request that finds no instance wakes the Fleet at once: the cold start begins on arrival.
  EXPECT_NEAR(r.ttft_s.p50, 0.5, 1e-6);
  EXPECT_NEAR(r.mean_instances, 7.02 / 20, 1e-3);
  EXPECT_EQ(r.peak_instances, 1);
}

TEST(Simulator, ASleepingInstanceIsBilledAtTheSleepPriceAndWokenByTheNextRequest) {
  // One request of 1 s at 0 (cold start 0.5 s) and one at 10 s; keep_alive 30 s, sleep_after
  // 2 s: idle from 1.5 s, asleep from 3.5 s until the second request wakes it at 10 s, then
  // idle from 11 s and asleep from 13 s to the end at 20 s: 6.5 + 7 s asleep.
  auto w = build_workload(config("    keep_alive: 30s\n    sleep_after: 2s\n"), {trace_of({0, 10}, 11, 20)},
                          fixed_service(0.5, 10), {});
  ASSERT_TRUE(w) << w.status().message();
  auto slept = run(w.value(), "fixed");
  auto awake = run(w.value(), "fixed:sleep_after=never");
  EXPECT_EQ(slept.served, 2u);
  EXPECT_EQ(slept.cold_requests, 1u);
  EXPECT_EQ(slept.wake_requests, 1u);
  EXPECT_EQ(awake.wake_requests, 0u);
  EXPECT_NEAR(slept.sleep_seconds, 13.5, 0.05);
  EXPECT_NEAR(slept.instance_seconds, awake.instance_seconds, 1e-9) << "sleeping time is instance time";
  // 0.01 $/s running, 10% of it asleep.
  EXPECT_NEAR(awake.cost - slept.cost, slept.sleep_seconds * 0.009, 1e-6);
  // The wake costs the profile's wake time, no cold start.
  EXPECT_NEAR(slept.ttft_s.max - awake.ttft_s.max, 0, 1e-9) << "the cold start dominates the maximum";
}

TEST(Simulator, SleepersOnAGpuMoveToTheHostSoThatTwoDeploymentsTakeTurnsWithoutColdStarts) {
  // A GPU with room for one instance, two deployments taking turns every 5 s (1 s requests,
  // 0.5 s cold starts, asleep 1 s after each). With a host device the sleeper's memory moves
  // there and each turn wakes its instance; without one, each turn evicts the other
  // deployment's sleeper and starts cold.
  auto yaml = [](bool host) {
    return std::string("devices:\n  - name: gpu0\n    kind: cuda\n    memory: 1GiB\n    price_per_second: 0.01\n") +
           (host ? "  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n" : "") +
           "deployments:\n"
           "  - name: a\n    model: a.gguf\n    device: gpu0\n    memory: 1GiB\n    keep_alive: 1h\n    sleep_after: 1s\n"
           "  - name: b\n    model: b.gguf\n    device: gpu0\n    memory: 1GiB\n    keep_alive: 1h\n    sleep_after: 1s\n";
  };
  Calibration cal = fixed_service(0.5, 10);
  cal.profiles["cuda"] = cal.profiles["cpu"];
  Trace t = trace_of({}, 11, 20);
  t.streams = 2;
  for (int k = 0; k < 4; ++k) t.requests.push_back({5.0 * k, static_cast<uint32_t>(k % 2), 0, 11});
  auto run_with = [&](bool host) {
    auto c = platform::parse_config(yaml(host), "test.yaml", ".");
    EXPECT_TRUE(c) << c.status().message();
    auto w = build_workload(c.value(), {t}, cal, {});
    EXPECT_TRUE(w) << w.status().message();
    return run(w.value(), "fixed");
  };
  const RunResult with_host = run_with(true), without = run_with(false);
  EXPECT_EQ(with_host.served, 4u);
  EXPECT_EQ(with_host.cold_requests, 2u);
  EXPECT_EQ(with_host.wake_requests, 2u);
  EXPECT_EQ(without.served, 4u);
  EXPECT_EQ(without.cold_requests, 4u);
  EXPECT_EQ(without.wake_requests, 0u);
}

TEST(Simulator, SlotsBatchAndQueueBoundsRefuse) {
  // 6 simultaneous requests, 1 instance with 2 slots, queue of 3: one is refused; the rest run
  // two at a time (1 s each) after a 1 s cold start.
  auto w = build_workload(config("    keep_alive: 1m\n    slots: 2\n    max_queue: 3\n    max_instances: 1\n"),
                          {trace_of({0, 0, 0, 0, 0, 0}, 11, 30)}, fixed_service(1, 10), {});
  ASSERT_TRUE(w);
  auto r = run(w.value(), "fixed");
  EXPECT_EQ(r.refused_queue_full, 3u);  // the queue holds 3 while the instance starts
  EXPECT_EQ(r.served, 3u);
  EXPECT_NEAR(r.ttft_s.max, 2.0, 1e-6);  // the third waited for a slot: 1 s start + 1 s
  EXPECT_NEAR(r.queue_s.max, 2.0, 1e-6);
}

TEST(Simulator, RequestsPayTheirOverheadSideBySideAndPrefillInTurn) {
  // Two requests at once on a cold instance (0.5 s start), 100-token prompts at 1000 tokens/s,
  // 0.1 s of overhead each: both overheads run together, the prompts one after the other, so
  // the first tokens come at 0.5 + 0.1 + 0.1 and + 0.1 more (0.7 and 0.8 s), not at 0.7 and 0.9.
  Calibration c = fixed_service(0.5, 10);
  c.profiles["cpu"].prefill_tokens_per_s = 1000;
  c.profiles["cpu"].request_overhead_s = 0.1;
  Trace t = trace_of({0, 0}, 1, 10);
  for (auto& r : t.requests) r.prompt_tokens = 100;
  auto w = build_workload(config("    keep_alive: 1m\n    slots: 2\n    max_instances: 1\n"), {t}, c, {});
  ASSERT_TRUE(w);
  auto r = run(w.value(), "fixed");
  EXPECT_EQ(r.served, 2u);
  EXPECT_NEAR(r.ttft_s.mean, 0.75, 1e-6);
  EXPECT_NEAR(r.ttft_s.max, 0.8, 1e-6);
}

TEST(Simulator, EachRequestDrawsItsOverheadFromTheQuantiles) {
  // A warm instance and requests 1 s apart with overhead quantiles 0, 0.1 and 0.5 s (uniform
  // in 0-0.1 s for half of the requests, 0.1-0.5 s for the others): time to first token is
  // the drawn overhead, so its quantiles come back (p50 0.1 s, p95 0.46 s, mean 0.175 s).
  Calibration c = fixed_service(0.5, 10);
  c.profiles["cpu"].request_overhead_s = Spread(std::vector<double>{0, 0.1, 0.5});
  std::vector<double> a;
  for (int i = 0; i < 4000; ++i) a.push_back(10 + i);
  auto w = build_workload(config("    min_instances: 1\n    keep_alive: 1h\n"), {trace_of(a, 1, 4020)}, c, {});
  ASSERT_TRUE(w);
  auto r = run(w.value(), "fixed");
  ASSERT_EQ(r.served, 4000u);
  EXPECT_EQ(r.cold_requests, 0u);
  EXPECT_NEAR(r.ttft_s.p50, 0.1, 0.005);
  EXPECT_NEAR(r.ttft_s.p95, 0.46, 0.01);
  EXPECT_NEAR(r.ttft_s.mean, 0.175, 0.005);
  EXPECT_LE(r.ttft_s.max, 0.5);
  // The same draws every run: a seed-free hash of the request.
  EXPECT_EQ(run(w.value(), "fixed").ttft_s.mean, r.ttft_s.mean);
}

TEST(Simulator, EachStartDrawsItsColdStartFromTheQuantiles) {
  // Requests 10 s apart with keep_alive 1 s: every one is cold; cold starts uniform in
  // 0.1-0.3 s, so time to first token is too (mean 0.2 s), and instance time follows.
  Calibration c = fixed_service(0.5, 10);
  c.profiles["cpu"].cold_start_s = Spread(std::vector<double>{0.1, 0.3});
  std::vector<double> a;
  for (int i = 0; i < 1000; ++i) a.push_back(i * 10.0);
  auto w = build_workload(config("    keep_alive: 1s\n"), {trace_of(a, 1, 10000)}, c, {});
  ASSERT_TRUE(w);
  auto r = run(w.value(), "fixed");
  ASSERT_EQ(r.served, 1000u);
  EXPECT_EQ(r.cold_starts, 1000u);
  EXPECT_NEAR(r.ttft_s.mean, 0.2, 0.005);
  EXPECT_NEAR(r.ttft_s.p50, 0.2, 0.01);
  EXPECT_GE(r.ttft_s.max, 0.29);
  EXPECT_LE(r.ttft_s.max, 0.3 + 1e-9);
  // Each instance: its cold start, the request (0 s: one token, no prompt), 1 s of keep-alive
  // and half a tick.
  EXPECT_NEAR(r.instance_seconds / 1000, 0.2 + 1 + 0.01, 0.01);
}

TEST(Simulator, ScalesOutUnderLoadAndAlwaysOnIsWarm) {
  std::vector<double> a;
  for (int i = 0; i < 40; ++i) a.push_back(i * 0.05);  // 40 requests in 2 s, 5 s each
  auto w = build_workload(config("    keep_alive: 5s\n    slots: 4\n    max_instances: 20\n    max_queue: 100\n", "32GiB"),
                          {trace_of(a, 51, 60)}, fixed_service(2, 10), {});
  ASSERT_TRUE(w);
  auto all = simulate_all(w.value(), {spec("fixed"), spec("always-on")}, 2);
  ASSERT_TRUE(all) << all.status().message();
  const auto& c = all.value()[0];
  const auto& on = all.value()[1];
  EXPECT_EQ(c.served, 40u);
  EXPECT_GE(c.peak_instances, 8);
  EXPECT_LE(c.peak_instances, 10);
  // Peak provisioning by the workload alone: all 40 requests (5 s each) are in flight at once
  // at 2 s, 4 slots each: 10 instances, whatever fixed needed.
  EXPECT_EQ(on.peak_instances, 10);
  EXPECT_EQ(on.cold_requests, 0u);
  EXPECT_EQ(on.cold_starts, 0u);
  EXPECT_NEAR(on.instance_seconds, on.peak_instances * 60.0, 1e-6);
  EXPECT_LT(c.cost, on.cost);
  EXPECT_LT(on.ttft_s.p99, c.ttft_s.p99);
}

TEST(Simulator, MemoryEvictsIdleInstancesOfOtherDeployments) {
  // Two deployments of 1 GiB on a 1 GiB device with long keep-alive: the second one's
  // request evicts the first one's idle instance, as the daemon's fleet does.
  auto c = config("    keep_alive: 10m\n", "1GiB");
  auto w = build_workload(c, {trace_of({0, 5}, 11, 20)}, fixed_service(0.5, 10), {.deployments = 2, .seed = 3});
  ASSERT_TRUE(w);
  // Force one request on each deployment.
  w->requests[0].deployment = 0;
  w->requests[1].deployment = 1;
  auto r = run(w.value(), "fixed");
  EXPECT_EQ(r.served, 2u);
  EXPECT_EQ(r.instance_starts, 2u);
  // The first runs from 0 s (a cold start begins when the request arrives) until evicted at
  // 5 s; the second starts one fleet tick after the eviction (5.02 s), once the memory is
  // free, as in the daemon, and runs to the end.
  EXPECT_NEAR(r.instance_seconds, 5 + (20 - 5.02), 1e-3);
  EXPECT_NEAR(r.memory_utilisation, (5 + (20 - 5.02)) / 20, 1e-3);
}

TEST(Simulator, ModelTooLargeForItsDeviceIsRefused) {
  auto c = config("    keep_alive: 10m\n", "4GiB");
  c.deployments[0].memory_bytes = 8ull << 30;
  auto w = build_workload(c, {trace_of({0, 1}, 11, 20)}, fixed_service(0.5, 10), {});
  ASSERT_TRUE(w);
  auto r = run(w.value(), "fixed");
  EXPECT_EQ(r.refused_no_memory, 2u);
  EXPECT_EQ(r.served, 0u);
}

TEST(Simulator, DeterministicAtClusterScale) {
  auto t = load_trace("synthetic:bursty:rate=30,on=20s,off=100s,duration=1h", {.seed = 5});
  ASSERT_TRUE(t);
  auto w = build_workload(config("    keep_alive: 30s\n    slots: 4\n    max_instances: 4\n"), {t.value()},
                          Calibration::builtin(), {.devices = 4, .deployments = 40, .seed = 5});
  ASSERT_TRUE(w) << w.status().message();
  EXPECT_EQ(w->deployments.size(), 40u);
  EXPECT_EQ(w->deployments[5].config.name, "m-5");
  EXPECT_EQ(w->deployments[5].config.device, "cpu0-1");
  auto a = run(w.value(), "concurrency");
  auto b = run(w.value(), "concurrency");
  EXPECT_EQ(a.served + a.refused(), a.requests);
  EXPECT_EQ(a.served, b.served);
  EXPECT_EQ(a.instance_seconds, b.instance_seconds);
  EXPECT_EQ(a.ttft_s.p99, b.ttft_s.p99);
  EXPECT_EQ(a.decisions, b.decisions);
}

TEST(Simulator, UnknownPolicyIsReportedWithTheKnownOnes) {
  auto s = parse_policy_spec("nonesuch");
  ASSERT_FALSE(s);
  EXPECT_NE(s.status().message().find("nonesuch"), std::string::npos);
  EXPECT_NE(s.status().message().find("concurrency"), std::string::npos);
  auto k = parse_policy_spec("ka=concurrency:keep_alive=10m,target_concurrency=2");
  ASSERT_TRUE(k) << k.status().message();
  EXPECT_EQ(k->label, "ka");
  EXPECT_DOUBLE_EQ(*k->keep_alive_s, 600);
  EXPECT_FALSE(parse_policy_spec("concurrency:keepalive=1"));
  std::vector<std::string> missing;
  auto d = default_policy_specs(&missing);
  EXPECT_EQ(d[0].label, "always-on");
  EXPECT_EQ(d[1].label, "keep-alive-10m");
}

TEST(Report, WritesMarkdownJsonAndPlots) {
  auto w = build_workload(config("    keep_alive: 2s\n"), {trace_of({0, 10}, 11, 20)}, fixed_service(0.5, 10), {});
  ASSERT_TRUE(w);
  auto all = simulate_all(w.value(), {spec("always-on"), spec("fixed")}, 1);
  ASSERT_TRUE(all);
  zs::testing::TempDir dir;
  ReportInfo info;
  info.duration_s = 20;
  ASSERT_TRUE(write_report(dir.file("out"), info, all.value()));
  for (const char* f : {"report.md", "report.json", "instances.svg", "ttft_cdf.svg"})
    EXPECT_TRUE(std::filesystem::exists(dir.file("out") + "/" + f)) << f;
  auto j = nlohmann::json::parse(std::ifstream(dir.file("out") + "/report.json"));
  ASSERT_EQ(j["policies"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["policies"][0]["cost_vs_always_on"].get<double>(), 1.0);
  EXPECT_LT(j["policies"][1]["cost_vs_always_on"].get<double>(), 1.0);
  std::ifstream svg(dir.file("out") + "/instances.svg");
  std::string text((std::istreambuf_iterator<char>(svg)), {});
  EXPECT_EQ(text.rfind("<svg", 0), 0u);
  EXPECT_NE(text.find("polyline"), std::string::npos);
}

}  // namespace
}  // namespace zs::sim
