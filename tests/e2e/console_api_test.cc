// The console's HTTP side against a real `zeroserve serve`: its page and files, the status and
// series JSON (paging, filtering, bad parameters), /admin/costs over a range, POST
// /admin/reload and the admin role. The page itself is tested in a browser
// (serial/console_browser_test.cc).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "e2e/serve_fixture.h"

namespace zs {
namespace {

using nlohmann::json;
using testing::Serve;

gateway::HttpResponse get(const std::string& address, const std::string& path, const std::string& key = "",
                          const std::string& method = "GET", const std::string& body = "") {
  gateway::HttpHeaders h;
  if (!key.empty()) h.push_back({"Authorization", "Bearer " + key});
  auto r = gateway::http_request(method, address, path, body, h, std::chrono::seconds(60));
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r.value() : gateway::HttpResponse{};
}

std::string error_param(const gateway::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") && j["error"]["param"].is_string() ? j["error"]["param"].get<std::string>() : "";
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(ConsoleApi, ServesThePageAtRootAndConsolePathsAndItsFilesAndNothingElse) {
  Serve s("deployments:\n" + testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty());
  for (const std::string path : {"/", "/console", "/console/", "/console/deployments", "/console/costs",
                                 "/console/batches", "/console/playground", "/console/admin"}) {
    auto r = get(s.address(), path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8") << path;
    EXPECT_NE(r.body.find("<script src=\"/console/console.js\">"), std::string::npos) << path;
  }
  auto js = get(s.address(), "/console/console.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(get(s.address(), "/console/console.css").header("Content-Type"), "text/css; charset=utf-8");
  // Nothing is fetched from elsewhere: no absolute URLs in the page or its files.
  for (const std::string path : {"/console/", "/console/console.js", "/console/console.css"})
    EXPECT_EQ(get(s.address(), path).body.find("https://"), std::string::npos) << path;
  EXPECT_EQ(get(s.address(), "/console/nope").status, 404);
  EXPECT_EQ(get(s.address(), "/console/index.html").status, 404);  // pages have names, not files
  EXPECT_EQ(get(s.address(), "/console/deployments", "", "POST").status, 405);
}

TEST(ConsoleApi, StatusIsFilteredThenPagedAndRefusesBadParametersNamingThem) {
  std::string yaml = "deployments:\n";
  for (const char* name : {"alpha", "beta", "gamma", "delta", "alpha-2"}) yaml += testing::stories_deployment(name);
  Serve s(yaml);
  ASSERT_FALSE(s.address().empty());
  auto names = [](const json& j) {
    std::vector<std::string> out;
    for (const auto& d : j["deployments"]) out.push_back(d["name"]);
    return out;
  };
  json all = json::parse(get(s.address(), "/console/api/status").body);
  EXPECT_EQ(all["total"], 5);
  EXPECT_EQ(all["matched"], 5);
  EXPECT_EQ(names(all), (std::vector<std::string>{"alpha", "alpha-2", "beta", "delta", "gamma"}));
  EXPECT_EQ(all["caller"], (json{{"keys_required", false}, {"admin", true}, {"key_name", ""}}));
  const json& alpha = all["deployments"][0];
  EXPECT_EQ(alpha["state"], "idle");
  EXPECT_EQ(alpha["instances"], json::array());
  EXPECT_EQ(alpha["queued"], (json{{"interactive", 0}, {"batch", 0}}));
  EXPECT_EQ(alpha["keep_alive_s"], 300.0);
  EXPECT_TRUE(alpha["scale_to_zero_in_s"].is_null());  // nothing running

  json page = json::parse(get(s.address(), "/console/api/status?offset=1&limit=2").body);
  EXPECT_EQ(names(page), (std::vector<std::string>{"alpha-2", "beta"}));
  EXPECT_EQ(page["matched"], 5);
  json filtered = json::parse(get(s.address(), "/console/api/status?q=alpha&limit=1&offset=1").body);
  EXPECT_EQ(names(filtered), (std::vector<std::string>{"alpha-2"}));
  EXPECT_EQ(filtered["matched"], 2);
  EXPECT_EQ(filtered["total"], 5);
  EXPECT_EQ(json::parse(get(s.address(), "/console/api/status?state=ready").body)["matched"], 0);
  EXPECT_EQ(json::parse(get(s.address(), "/console/api/status?q=%61lph%61").body)["matched"], 2);  // decoded

  for (const std::string q : {"limit=0", "limit=201", "limit=x", "offset=-1", "offset=1e3"}) {
    auto r = get(s.address(), "/console/api/status?" + q);
    EXPECT_EQ(r.status, 400) << q;
    EXPECT_EQ(error_param(r), q.substr(0, q.find('='))) << r.body;
  }
  EXPECT_EQ(get(s.address(), "/console/api/nope").status, 404);
  EXPECT_EQ(get(s.address(), "/console/api/series?deployment=nope").status, 404);
  EXPECT_EQ(get(s.address(), "/console/api/status", "", "POST").status, 405);
}

TEST(ConsoleApi, ARequestShowsInTheInstancesPhasesKeepAliveCountdownAndTheSeries) {
  Serve s("deployments:\n" + testing::stories_deployment("story", "    keep_alive: 120s\n"));
  ASSERT_FALSE(s.address().empty());
  auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", testing::chat("story", 8, true).dump());
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->status, 200);
  json d;
  ASSERT_TRUE(testing::wait_for([&] {
    d = json::parse(get(s.address(), "/console/api/status").body)["deployments"][0];
    return d["instances"].size() == 1 && d["instances"][0]["phase"] == "idle";
  }, std::chrono::seconds(10))) << d.dump();
  EXPECT_EQ(d["cold_starts"], 1);
  const double left = d["scale_to_zero_in_s"].get<double>();
  EXPECT_GT(left, 100);
  EXPECT_LE(left, 120);
  EXPECT_DOUBLE_EQ(d["instances"][0]["keep_alive_left_s"].get<double>(), left);
  // The last hour in 10 s buckets: the request, its TTFT and tokens, and the cold start (the
  // sampler sees it within a second).
  json series;
  ASSERT_TRUE(testing::wait_for([&] {
    series = json::parse(get(s.address(), "/console/api/series?deployment=story").body);
    int64_t cold = 0;
    for (const auto& c : series["cold_starts"]) cold += c.get<int64_t>();
    return cold == 1;
  }, std::chrono::seconds(10)));
  ASSERT_EQ(series["t"].size(), 360u);
  int64_t requests = 0;
  double tokens = 0;
  int ttfts = 0;
  for (size_t i = 0; i < 360; ++i) {
    requests += series["requests"][i].get<int64_t>();
    tokens += series["tokens_per_s"][i].get<double>() * 10;
    if (!series["ttft_p50_s"][i].is_null()) {
      ++ttfts;
      EXPECT_GT(series["ttft_p95_s"][i].get<double>(), 0);
    }
  }
  EXPECT_EQ(requests, 1);
  EXPECT_EQ(ttfts, 1);
  EXPECT_GT(tokens, 0);
  // Without a deployment: all of them together.
  const json total = json::parse(get(s.address(), "/console/api/series").body);
  EXPECT_TRUE(total["deployment"].is_null());
  EXPECT_EQ(total["requests"], series["requests"]);
}

TEST(AdminCosts, SinceAndUntilBoundTheReportAndMalformedRangesAreRefused) {
  Serve s("devices:\n  - {name: cpu0, kind: cpu, memory: 4GiB, price_per_second: 0.001}\ndeployments:\n" +
          testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty());
  const double before = unix_now();
  ASSERT_EQ(s.post(testing::chat("story", 4)).status, 200);
  json all;
  ASSERT_TRUE(testing::wait_for([&] {
    all = json::parse(get(s.address(), "/admin/costs").body);
    return all["deployments"].size() == 1 && all["deployments"][0]["requests"] == 1;
  }, std::chrono::seconds(10)));
  char range[96];
  std::snprintf(range, sizeof range, "/admin/costs?since=%.3f&until=%.3f", before - 1, unix_now() + 60);
  const json within = json::parse(get(s.address(), range).body);
  EXPECT_EQ(within["deployments"][0]["requests"], 1);
  EXPECT_NEAR(within["from"].get<double>(), before - 1, 0.001);
  std::snprintf(range, sizeof range, "/admin/costs?until=%.3f", before - 10);
  EXPECT_EQ(json::parse(get(s.address(), range).body)["deployments"].size(), 0u);  // before anything ran
  std::snprintf(range, sizeof range, "/admin/costs?since=%.3f", unix_now() + 3600);
  EXPECT_EQ(get(s.address(), range).status, 400);  // since after the default until (now)
  for (const std::string q : {"since=yesterday", "until=", "since=-5", "since=10&until=10", "since=20&until=10", "until=nan"}) {
    auto r = get(s.address(), "/admin/costs?" + q);
    if (q == "until=") {
      EXPECT_EQ(r.status, 200) << q;  // empty: the default
      continue;
    }
    EXPECT_EQ(r.status, 400) << q << " " << r.body;
    EXPECT_FALSE(error_param(r).empty()) << r.body;
  }
}

TEST(AdminApi, NeedsAnAdminKeyWheneverKeysAreConfiguredAndReloadsTheConfiguration) {
  const std::string keys = "gateway:\n  api_keys:\n    - {key: sk-root, name: root, admin: true}\n    - {key: sk-user, name: user}\n";
  Serve s(keys + "deployments:\n" + testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty());
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/admin/costs"}, {"GET", "/admin/deployments"}, {"POST", "/admin/deployments/story/prewarm"},
           {"POST", "/admin/deployments/story/scale"}, {"POST", "/admin/reload"}}) {
    EXPECT_EQ(get(s.address(), path, "", method).status, 401) << path;
    auto user = get(s.address(), path, "sk-user", method, R"({"instances": 1})");
    EXPECT_EQ(user.status, 401) << path;
    EXPECT_EQ(json::parse(user.body)["error"]["code"], "admin_key_required") << user.body;
  }
  // The user key still reads the console's status (read-only), and is told it is no admin.
  const json st = json::parse(get(s.address(), "/console/api/status", "sk-user").body);
  EXPECT_EQ(st["caller"], (json{{"keys_required", true}, {"admin", false}, {"key_name", "user"}}));
  EXPECT_EQ(get(s.address(), "/console/api/status").status, 401);
  EXPECT_EQ(get(s.address(), "/console/api/auth").body, R"({"keys_required":true})");  // public
  EXPECT_EQ(get(s.address(), "/admin/deployments", "sk-root").status, 200);

  // Reload: a second deployment appears; a broken file is refused and the running one kept.
  s.rewrite_config(keys + "deployments:\n" + testing::stories_deployment("story") + testing::stories_deployment("tale"));
  auto reload = get(s.address(), "/admin/reload", "sk-root", "POST");
  EXPECT_EQ(reload.status, 200) << reload.body;
  EXPECT_EQ(json::parse(reload.body)["deployments"], 2);
  EXPECT_EQ(json::parse(get(s.address(), "/console/api/status", "sk-root").body)["total"], 2);
  s.rewrite_config(keys + "deployments:\n  - {name: story, model: /nonexistent.gguf}\n");
  auto broken = get(s.address(), "/admin/reload", "sk-root", "POST");
  EXPECT_EQ(broken.status, 404) << broken.body;  // the missing model file
  EXPECT_EQ(json::parse(get(s.address(), "/console/api/status", "sk-root").body)["total"], 2);
}

TEST(AdminApi, IsOpenLikeTheRestOfTheApiWhenNoKeysAreConfigured) {
  Serve s("deployments:\n" + testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty());
  EXPECT_EQ(get(s.address(), "/admin/deployments").status, 200);
  EXPECT_EQ(get(s.address(), "/admin/costs").status, 200);
  EXPECT_EQ(get(s.address(), "/console/api/auth").body, R"({"keys_required":false})");
}

}  // namespace
}  // namespace zs
