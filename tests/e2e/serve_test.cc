// `zeroserve serve` as a user runs it: real daemon, real worker processes, real HTTP.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "gateway/http/http_client.h"
#include "gateway/http/http_server.h"
#include "gateway/http/sse.h"
#include "test_util/process.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"
#include "serve_fixture.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::ChildProcess;
using zs::testing::Serve;
using zs::testing::chat;
using zs::testing::stories_deployment;
using zs::testing::wait_for;

TEST(Serve, ScalesFromZeroAndBackToZero) {
  Serve s("devices:\n  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n"
          "deployments:\n" + stories_deployment("story", "    keep_alive: 1s\n"));
  ASSERT_FALSE(s.address().empty());
  EXPECT_EQ(s.state_of("story"), "idle");
  auto first = s.post(chat("story", 8));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_FALSE(first.header("X-Zeroserve-Cold-Start-Ms").empty());
  EXPECT_EQ(json::parse(first.body)["usage"]["completion_tokens"], 8);
  EXPECT_EQ(json::parse(first.body)["model"], "story");  // the deployment's name, not the file's
  auto warm = s.post(chat("story", 8));
  EXPECT_EQ(warm.status, 200);
  EXPECT_TRUE(warm.header("X-Zeroserve-Cold-Start-Ms").empty());  // the instance was ready
  EXPECT_EQ(json::parse(warm.body)["choices"][0]["message"]["content"],
            json::parse(first.body)["choices"][0]["message"]["content"]);
  // Idle past keep_alive: back to zero, and the next request starts one again.
  EXPECT_TRUE(wait_for([&] { return s.state_of("story") == "idle"; }, std::chrono::seconds(20)));
  auto again = s.post(chat("story", 4));
  EXPECT_EQ(again.status, 200);
  EXPECT_FALSE(again.header("X-Zeroserve-Cold-Start-Ms").empty());
  // Every instance-second was metered at the device's price. A request is written to the
  // ledger just after its response is sent, so the last one may take a moment to appear.
  json c;
  wait_for([&] {
    auto costs = gateway::http_request("GET", s.address(), "/admin/costs");
    if (!costs.is_ok()) return false;
    c = json::parse(costs->body);
    return c["deployments"].size() == 1 && c["deployments"][0]["requests"] == 3;
  }, std::chrono::seconds(10));
  auto costs = gateway::http_request("GET", s.address(), "/admin/costs");
  ASSERT_TRUE(costs.is_ok());
  ASSERT_EQ(c["deployments"].size(), 1u) << costs->body;
  EXPECT_GT(c["deployments"][0]["instance_seconds"].get<double>(), 0.0);
  EXPECT_GT(c["deployments"][0]["cost"].get<double>(), 0.0);
  EXPECT_EQ(c["deployments"][0]["cold_starts"], 2);
  EXPECT_EQ(c["deployments"][0]["requests"], 3);
}

TEST(Serve, UnknownModelListsTheDeployments) {
  Serve s("deployments:\n" + stories_deployment("story"));
  auto r = s.post(chat("nope", 4));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("story"), std::string::npos) << r.body;
}

TEST(Serve, FullQueueAnswers429WithRetryAfter) {
  Serve s("deployments:\n" + stories_deployment("story", "    max_queue: 1\n    max_instances: 1\n"));
  std::vector<std::future<gateway::HttpResponse>> f;
  for (int i = 0; i < 6; ++i) f.push_back(std::async(std::launch::async, [&] { return s.post(chat("story", 200)); }));
  int ok = 0, limited = 0;
  for (auto& x : f) {
    auto r = x.get();
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_FALSE(r.header("Retry-After").empty());
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(limited, 1);
}

TEST(Serve, RequestTimeoutWhileAnInstanceNeverStartsIs504) {
  Serve s("deployments:\n  - name: stuck\n    runtime: command\n    command: \"sleep 60 {port}\"\n"
          "    memory: 1MiB\n    request_timeout: 1s\n");
  auto r = s.post(chat("stuck", 4));
  EXPECT_EQ(r.status, 504);
  EXPECT_NE(r.body.find("request_timeout"), std::string::npos) << r.body;
}

TEST(Serve, StreamingRequestWaitingForAColdStartGetsKeepAliveComments) {
  // A command runtime that takes ~2.5 s to come up, probed on /health.
  const std::string cmd = "sh -c 'sleep 2.5; exec " + std::string(ZS_BINARY) + " worker --listen 127.0.0.1:{port} --model {model} --threads 1'";
  Serve s("deployments:\n  - name: slow\n    runtime: command\n    command: \"" + cmd + "\"\n    model: " +
          zs::testing::golden_model("stories260K.gguf") + "\n    memory: 64MiB\n");
  std::string raw;
  auto r = gateway::http_stream("POST", s.address(), "/v1/chat/completions", chat("slow", 4, true).dump(), {},
                                [&](std::string_view chunk) {
                                  raw += chunk;
                                  return true;
                                }, std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(raw.find(": waiting for an instance of slow"), std::string::npos) << raw;
  EXPECT_NE(raw.find(": cold start took"), std::string::npos) << raw;
  EXPECT_NE(raw.find(": X-Zeroserve-Start: cold; ms="), std::string::npos) << "the start, as the header would say it";
  EXPECT_NE(raw.find("data: [DONE]"), std::string::npos) << raw;
}

TEST(Serve, ApiKeysAreEnforced) {
  Serve s("gateway:\n  api_keys: [secret-1]\ndeployments:\n" + stories_deployment("story"));
  EXPECT_EQ(s.post(chat("story", 2)).status, 401);
  EXPECT_EQ(s.post(chat("story", 2), {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(s.post(chat("story", 2), {{"Authorization", "Bearer secret-1"}}).status, 200);
}

TEST(Serve, SighupReloadsTheConfiguration) {
  Serve s("deployments:\n" + stories_deployment("story"));
  s.rewrite_config("deployments:\n" + stories_deployment("story") + stories_deployment("tale"));
  s.process().signal(SIGHUP);
  EXPECT_TRUE(wait_for([&] { return s.state_of("tale") == "idle"; }, std::chrono::seconds(10)));
  EXPECT_EQ(s.post(chat("tale", 2)).status, 200);
  // A broken file keeps the running configuration.
  s.rewrite_config("deployments: [");
  s.process().signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(s.post(chat("story", 2)).status, 200);
}

// The worker's command line names its socket under the daemon's state directory; "[s]tory"
// keeps the pattern from matching the shell that runs pgrep itself.
std::string instance_pattern(const Serve& s) { return "'" + s.dir().file("state") + "/.*[s]tory'"; }

TEST(Serve, ACrashedInstanceFailsItsRequestAndIsReplaced) {
  // A model big enough that a request is still running when its instance is killed.
  zs::testing::TempDir models;
  const std::string model = models.file("m.gguf");
  ASSERT_EQ(zs::testing::run_command(std::string(ZS_BINARY) + " gen-model --preset smollm2-135m --type q8_0 --out " + model).exit_code, 0);
  Serve s("deployments:\n  - name: story\n    model: " + model + "\n    min_instances: 1\n    ctx: 1024\n    threads: 1\n");
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  auto inflight = std::async(std::launch::async, [&] { return s.post(chat("story", 500)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  zs::testing::run_command("pkill -KILL -f " + instance_pattern(s));
  auto r = inflight.get();
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(wait_for([&] { return s.post(chat("story", 2)).status == 200; }, std::chrono::seconds(20)));
}

TEST(Serve, InstancesDieWithTheDaemonEvenOnSigkill) {
  Serve s("deployments:\n" + stories_deployment("story", "    min_instances: 1\n"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  const std::string pattern = instance_pattern(s);
  EXPECT_EQ(zs::testing::run_command("pgrep -f " + pattern).exit_code, 0);
  s.process().signal(SIGKILL);
  s.process().wait_exit(std::chrono::seconds(5));
  EXPECT_TRUE(wait_for([&] { return zs::testing::run_command("pgrep -f " + pattern).exit_code != 0; },
                       std::chrono::seconds(5)));
}

TEST(Serve, SigtermDrainsInFlightRequests) {
  Serve s("deployments:\n" + stories_deployment("story"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  auto inflight = std::async(std::launch::async, [&] { return s.post(chat("story", 300)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  s.process().signal(SIGTERM);
  EXPECT_EQ(inflight.get().status, 200);
  EXPECT_EQ(s.process().wait_exit(std::chrono::seconds(40)), 0);
}

TEST(Serve, PacksTwoDeploymentsIntoOneBudgetByEvictingTheIdleOne) {
  Serve s("devices:\n  - name: cpu0\n    kind: cpu\n    memory: 150MiB\n"
          "deployments:\n" + stories_deployment("a", "    memory: 100MiB\n") + stories_deployment("b", "    memory: 100MiB\n"));
  ASSERT_EQ(s.post(chat("a", 2)).status, 200);
  EXPECT_EQ(s.state_of("a"), "ready");
  ASSERT_EQ(s.post(chat("b", 2)).status, 200);  // waits while a's idle instance stops to make room
  EXPECT_EQ(s.state_of("b"), "ready");
  EXPECT_TRUE(wait_for([&] { return s.state_of("a") == "idle"; }, std::chrono::seconds(10)));
}

TEST(Serve, AdminApiScalesAndPrewarms) {
  Serve s("deployments:\n" + stories_deployment("story", "    max_instances: 2\n"));
  auto pre = gateway::http_request("POST", s.address(), "/admin/deployments/story/prewarm", "");
  ASSERT_TRUE(pre.is_ok());
  EXPECT_EQ(pre->status, 200);
  EXPECT_TRUE(wait_for([&] { return s.state_of("story") == "ready"; }, std::chrono::seconds(10)));
  auto scale = gateway::http_request("POST", s.address(), "/admin/deployments/story/scale", R"({"instances": 2})");
  ASSERT_TRUE(scale.is_ok());
  EXPECT_EQ(scale->status, 200);
  EXPECT_TRUE(wait_for([&] {
    auto r = gateway::http_request("GET", s.address(), "/admin/deployments");
    return r.is_ok() && json::parse(r->body)["deployments"][0]["instances"]["ready"] == 2;
  }, std::chrono::seconds(10)));
  auto too_many = gateway::http_request("POST", s.address(), "/admin/deployments/story/scale", R"({"instances": 9})");
  EXPECT_EQ(too_many->status, 400);
  auto unknown = gateway::http_request("POST", s.address(), "/admin/deployments/nope/prewarm", "");
  EXPECT_EQ(unknown->status, 404);
}

TEST(Serve, ScaleToZeroLeavesNoProcess) {
  Serve s("deployments:\n" + stories_deployment("story", "    keep_alive: 500ms\n"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  const std::string pattern = instance_pattern(s);
  EXPECT_EQ(zs::testing::run_command("pgrep -f " + pattern).exit_code, 0);
  EXPECT_TRUE(wait_for([&] { return zs::testing::run_command("pgrep -f " + pattern).exit_code != 0; },
                       std::chrono::seconds(10)));
  auto metrics = gateway::http_request("GET", s.address(), "/metrics");
  ASSERT_TRUE(metrics.is_ok());
  EXPECT_NE(metrics->body.find("zs_deployment_instances{deployment=\"story\",state=\"ready\"} 0"), std::string::npos)
      << metrics->body;
}

TEST(Serve, SighupDuringTrafficFailsNoRequest) {
  Serve s("deployments:\n" + stories_deployment("story", "    min_instances: 1\n"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, done{0};
  std::thread traffic([&] {
    while (!stop) {
      auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", chat("story", 8).dump());
      if (!r.is_ok() || r->status != 200) ++failures;
      ++done;
    }
  });
  for (int i = 0; i < 3; ++i) {
    s.rewrite_config("deployments:\n" + stories_deployment("story", "    min_instances: 1\n") +
                     stories_deployment("extra" + std::to_string(i)));
    s.process().signal(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  stop = true;
  traffic.join();
  EXPECT_GT(done.load(), 3);
  EXPECT_EQ(failures.load(), 0);
}

TEST(Serve, FetchesRemoteImagesForWorkersAndRefusesPrivateAddressesByDefault) {
  // A local image host (loopback is private, so the first daemon must allow it explicitly).
  std::ifstream in(zs::testing::shared_dir() + "/golden/images/checker-100x100.png", std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), {});
  gateway::Router router;
  router.add("GET", "/checker.png", [png](const gateway::HttpRequest&, std::shared_ptr<gateway::ResponseWriter> w) {
    w->respond(200, "image/png", png);
  });
  auto host = gateway::HttpServer::start({}, router);
  ASSERT_TRUE(host.is_ok());
  const std::string url = "http://" + host.value()->address() + "/checker.png";
  const std::string deployment = "  - name: llava\n    model: " + zs::testing::golden_model("tiny-llama-f16.gguf") +
                                 "\n    mmproj: " + zs::testing::golden_model("tiny-llava-mmproj-f32.gguf") + "\n    threads: 1\n";
  json body = chat("llava", 4);
  body["messages"][0]["content"] = json::array({{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                                {{"type", "text"}, {"text", "Describe the image."}}});
  {
    Serve s("gateway:\n  allow_private_image_urls: true\ndeployments:\n" + deployment);
    auto r = s.post(body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["usage"]["prompt_tokens_details"]["image_tokens"], 16);
  }
  Serve s("deployments:\n" + deployment);
  auto r = s.post(body);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("loopback"), std::string::npos) << r.body;
}

TEST(Serve, ConfigErrorsNameFileAndLine) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("bad.yaml");
  std::ofstream(path) << "deployments:\n  - name: x\n    model: /nonexistent.gguf\n    keepalive: 5\n";
  auto r = zs::testing::run_command(std::string(ZS_BINARY) + " serve --config " + path + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("bad.yaml:4"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace zs
