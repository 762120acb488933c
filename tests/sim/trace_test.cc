#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sim/calibration.h"
#include "sim/trace.h"
#include "test_util/temp_dir.h"

namespace zs::sim {
namespace {

std::string data(const std::string& rel) { return zs::testing::shared_dir() + "/data/" + rel; }

std::string write(const zs::testing::TempDir& dir, const std::string& name, const std::string& text) {
  const auto path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

TEST(Trace, AzureLlmReadsTheRealFile) {
  auto t = read_azure_llm_csv(data("azure-llm-2023/AzureLLMInferenceTrace_code.csv"));
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->requests.size(), 8819u);
  EXPECT_DOUBLE_EQ(t->requests.front().arrival_s, 0);
  EXPECT_EQ(t->requests.front().prompt_tokens, 4808u);
  EXPECT_EQ(t->requests.front().output_tokens, 10u);
  EXPECT_NEAR(t->requests[1].arrival_s, 0.052, 1e-6);
  // 18:17:03 -> 19:14:19 is about 57 minutes.
  EXPECT_NEAR(t->requests.back().arrival_s, 57 * 60 + 16, 2);
  EXPECT_GE(t->span_s, t->requests.back().arrival_s);
}

TEST(Trace, MalformedRowsNameFileAndLine) {
  zs::testing::TempDir dir;
  auto p = write(dir, "bad.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,10,2\n2023-11-16 18:17:04,ten,2\n");
  auto t = read_azure_llm_csv(p);
  ASSERT_FALSE(t);
  EXPECT_NE(t.status().message().find(p + ":3:"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("ContextTokens"), std::string::npos);

  auto q = write(dir, "bad2.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-13-16 18:17:03,10,2\n");
  EXPECT_NE(read_azure_llm_csv(q).status().message().find(":2:"), std::string::npos);

  auto f = write(dir, "f.csv", "app,func,end_timestamp,duration\na,b,1.5,0.5\na,b,x,0.5\n");
  auto r = read_azure_functions_2021(f, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find(f + ":3: end_timestamp"), std::string::npos) << r.status().message();

  auto m = write(dir, "m.jsonl", "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n{\"timestamp\": 1}\n");
  auto mr = read_mooncake_jsonl(m);
  ASSERT_FALSE(mr);
  EXPECT_NE(mr.status().message().find(m + ":2:"), std::string::npos) << mr.status().message();

  auto b = write(dir, "b.csv", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,1,2,3,x\n6,,1,2,3,x\n");
  EXPECT_NE(read_burstgpt_csv(b).status().message().find(b + ":3: Model"), std::string::npos);

  auto u = write(dir, "u.csv", "what,is,this\n1,2,3\n");
  auto ur = load_trace(u, {});
  ASSERT_FALSE(ur);
  EXPECT_NE(ur.status().message().find(u + ":1: unrecognised trace header"), std::string::npos);
}

TEST(Trace, AzureFunctions2019SpreadsCountsInsideTheirMinute) {
  auto t = load_trace(data("azure-functions-2019/invitro-1000-fullday"), {});
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->format, "azure-functions-2019");
  EXPECT_EQ(t->requests.size(), 608228u);  // SOURCE.md
  EXPECT_EQ(t->streams, 1000u);
  EXPECT_DOUBLE_EQ(t->span_s, 86400);
  EXPECT_LT(t->requests.back().arrival_s, 86400);
  auto again = load_trace(data("azure-functions-2019/invitro-1000-fullday"), {});
  EXPECT_EQ(again->requests[1234].arrival_s, t->requests[1234].arrival_s);  // seeded

  auto h = load_trace(data("azure-functions-2019/invitro-100-8h"), {});
  ASSERT_TRUE(h) << h.status().message();
  EXPECT_EQ(h->requests.size(), 339657u);
  EXPECT_EQ(h->streams, 100u);
  EXPECT_DOUBLE_EQ(h->span_s, 480 * 60);
}

TEST(Trace, OtherRealFiles) {
  auto f = load_trace(data("azure-functions-2021/AzureFunctionsInvocationTraceForTwoWeeksJan2021.csv"), {});
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->requests.size(), 998u);
  EXPECT_EQ(f->streams, 49u);
  EXPECT_TRUE(std::is_sorted(f->requests.begin(), f->requests.end(),
                             [](auto& a, auto& b) { return a.arrival_s < b.arrival_s; }));

  auto b = load_trace(data("burstgpt/burstgpt_slice.csv"), {});
  ASSERT_TRUE(b) << b.status().message();
  EXPECT_EQ(b->requests.size(), 383u);  // 400 rows, 17 failed
  EXPECT_EQ(b->skipped, 17u);

  auto m = load_trace(data("mooncake-fast25/conversation_trace.jsonl"), {});
  ASSERT_TRUE(m) << m.status().message();
  EXPECT_EQ(m->requests.size(), 12031u);
  EXPECT_NEAR(m->requests.back().arrival_s, 3536.999, 1e-6);
}

TEST(Trace, SyntheticShapes) {
  auto p = load_trace("synthetic:poisson:rate=10,duration=1000", {});
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_NEAR(static_cast<double>(p->requests.size()), 10000, 400);
  auto b = load_trace("synthetic:bursty:rate=10,on=10s,off=90s,duration=1000", {});
  ASSERT_TRUE(b);
  EXPECT_NEAR(static_cast<double>(b->requests.size()), 1000, 120);
  for (const auto& r : b->requests) EXPECT_LT(std::fmod(r.arrival_s, 100.0), 10.0);
  auto d = load_trace("synthetic:diurnal:rate=1,amplitude=1,period=1000s,duration=1000", {});
  ASSERT_TRUE(d);
  size_t first_half = 0;
  for (const auto& r : d->requests) first_half += r.arrival_s < 500;
  EXPECT_GT(first_half, d->requests.size() * 8 / 10);  // sin > 0 in the first half period
  EXPECT_FALSE(load_trace("synthetic:square:rate=1", {}));
  EXPECT_FALSE(load_trace("synthetic:poisson:rate=1,bogus=2", {}));
  auto p2 = load_trace("synthetic:poisson:rate=10,duration=1000", {});
  EXPECT_EQ(p2->requests.size(), p->requests.size());
}

TEST(Calibration, ColdStartAndRequestOverheadAreANumberOrQuantiles) {
  for (const std::string key : {"cold_start_s", "request_overhead_s"}) {
  SCOPED_TRACE(key);
  auto profile = [&](const std::string& value) {
    return parse_calibration("{\"format\":\"zeroserve-calibration/1\",\"profiles\":{\"cpu\":{\"" + key + "\":" +
                                 value + ",\"decode_tokens_per_s\":[[1,10]]}}}",
                             "c.json");
  };
  auto field = [&](const Calibration& c) -> const Spread& {
    const ServiceProfile& p = c.profiles.at("cpu");
    return key == "cold_start_s" ? p.cold_start_s : p.request_overhead_s;
  };
    auto one = profile("0.002");
    ASSERT_TRUE(one) << one.status().message();
    EXPECT_DOUBLE_EQ(field(*one).at(0.9), 0.002);
    EXPECT_FALSE(field(*one).varies());
    auto q = profile("[0.001, 0.002, 0.006]");
    ASSERT_TRUE(q) << q.status().message();
    const Spread& s = field(*q);
    EXPECT_TRUE(s.varies());
    EXPECT_DOUBLE_EQ(s.at(0), 0.001);
    EXPECT_DOUBLE_EQ(s.at(0.25), 0.0015);
    EXPECT_DOUBLE_EQ(s.at(0.75), 0.004);
    EXPECT_DOUBLE_EQ(s.at(1), 0.006);
    // Written back as it was read.
    auto again = parse_calibration(q->to_json(), "again.json");
    ASSERT_TRUE(again);
    EXPECT_EQ(field(*again), s);
    for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
             {"[0.003, 0.001]", ": quantiles must not descend"},
             {"-1", " must be numbers >= 0"},
             {"[]", " must be a number or a non-empty list"},
             {"\"3ms\"", " must be a number or a non-empty list"},
             {"[0.001, \"x\"]", ": every quantile must be a number"}}) {
      auto r = profile(bad);
      ASSERT_FALSE(r) << bad;
      EXPECT_NE(r.status().message().find("c.json: profiles.cpu." + key + says), std::string::npos)
          << r.status().message();
    }
  }
  EXPECT_DOUBLE_EQ(ServiceProfile{}.request_overhead_s.at(0.5), 0) << "no overhead unless given";
}

TEST(Calibration, FileMatchesBuiltinAndRoundTrips) {
  // The source tree, from this file's own path (tests/sim/trace_test.cc).
  const auto root = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  auto f = load_calibration((root / "src/sim/calibration_cpu.json").string());
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->to_json().substr(f->to_json().find("\"profiles\"")),
            Calibration::builtin().to_json().substr(Calibration::builtin().to_json().find("\"profiles\"")));
  auto again = parse_calibration(Calibration::builtin().to_json(), "x");
  ASSERT_TRUE(again);
  const auto& cpu = again->profile_for("cpu0", "cpu");
  EXPECT_DOUBLE_EQ(cpu.decode_rate(1), 15);
  EXPECT_DOUBLE_EQ(cpu.decode_rate(16), 40);
  EXPECT_DOUBLE_EQ(cpu.decode_rate(32), 40);
  EXPECT_DOUBLE_EQ(cpu.decode_rate(3), 25);
  EXPECT_EQ(&again->profile_for("gpu7", "cuda"), &again->profiles.at("cuda"));
  EXPECT_FALSE(parse_calibration("{\"format\":\"zeroserve-calibration/1\",\"profiles\":{\"cpu\":{\"decode_tokens_per_s\":[[2,1],[1,2]]}}}", "c.json"));
  EXPECT_DOUBLE_EQ(cpu.request_overhead_s.at(0.7), 0.003);
  auto bad = parse_calibration("{\"format\":\"zeroserve-calibration/1\",\"profiles\":{\"cpu\":{\"cold\":1}}}", "c.json");
  EXPECT_NE(bad.status().message().find("c.json: profiles.cpu: unknown key 'cold'"), std::string::npos);
}

}  // namespace
}  // namespace zs::sim
