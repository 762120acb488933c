// Models by name, end to end: `zeroserve pull`, `models`, `rm`, `serve --model hf:...` and a
// deployment naming an hf: model, all against a loopback server with the hub's URL layout
// (tests/gateway/hub/fake_hub.h) serving the real TinyStories-656K model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "e2e/serve_fixture.h"
#include "gateway/http/http_client.h"
#include "gateway/hub/fake_hub.h"
#include "test_util/process.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs::testing {
namespace {

using nlohmann::json;

constexpr const char* kRepo = "test/TinyStories-GGUF";
constexpr const char* kFile = "TinyStories-656K-Q8_0.gguf";

std::string tiny_stories_bytes() {
  std::ifstream in(golden_model(kFile), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PullEndToEnd : public ::testing::Test {
 protected:
  PullEndToEnd() {
    hub_.add(kRepo, kFile, tiny_stories_bytes());
    env_ = "ZEROSERVE_HF_ENDPOINT=" + hub_.endpoint() + " XDG_CACHE_HOME=" + shell_quote(dir_.file("cache")) +
           " XDG_STATE_HOME=" + shell_quote(dir_.file("state")) + " HF_TOKEN= ZEROSERVE_OFFLINE= ";
  }
  CommandResult zs(const std::string& args) { return run_command(env_ + zeroserve() + " " + args + " 2>&1"); }

  FakeHub hub_;
  TempDir dir_;
  std::string env_;
};

TEST_F(PullEndToEnd, PullListsAndRemovesAModelFromTheCommandLine) {
  const std::string name = std::string("hf:") + kRepo + "/" + kFile;
  auto pulled = zs("pull " + name);
  ASSERT_EQ(pulled.exit_code, 0) << pulled.out;
  EXPECT_NE(pulled.out.find("100%"), std::string::npos) << "plain progress lines when not a terminal: " << pulled.out;
  EXPECT_NE(pulled.out.find(dir_.file("cache") + "/zeroserve/hub/blobs/sha256-" + sha256_hex(tiny_stories_bytes())),
            std::string::npos)
      << pulled.out;
  auto listed = zs("models");
  ASSERT_EQ(listed.exit_code, 0) << listed.out;
  EXPECT_NE(listed.out.find(name), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("KiB"), std::string::npos) << listed.out;
  auto again = zs("pull " + std::string("hf:") + kRepo + ":q8_0");  // stored: nothing downloaded
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(hub_.downloads(), 1);
  auto removed = zs("rm " + name);
  ASSERT_EQ(removed.exit_code, 0) << removed.out;
  EXPECT_NE(zs("models").out.find("no models"), std::string::npos);
  auto missing = zs("rm " + name);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("not in the model store"), std::string::npos) << missing.out;
}

TEST_F(PullEndToEnd, OnATerminalPullRedrawsOneProgressLineWithBytesRateAndEta) {
  // script(1) gives the pull a pseudo-terminal.
  auto r = run_command("script -qec " + shell_quote(env_ + zeroserve() + " pull hf:" + kRepo + "/" + kFile) + " /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\r" + std::string(kFile) + " ["), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("100%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/s  ETA"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KiB / "), std::string::npos) << r.out;
}

TEST_F(PullEndToEnd, PullRefusesClearlyOfflineAndForABadNameOrAMissingFile) {
  auto offline = run_command("ZEROSERVE_OFFLINE=1 " + env_.substr(0, env_.find(" ZEROSERVE_OFFLINE=")) + " " + zeroserve() +
                             " pull hf:" + kRepo + "/" + kFile + " 2>&1");
  EXPECT_EQ(offline.exit_code, 1);
  EXPECT_NE(offline.out.find("offline mode is on"), std::string::npos) << offline.out;
  EXPECT_TRUE(hub_.paths().empty()) << "offline contacts nothing";
  auto bad = zs("pull hf:nothing-here");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("expected hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO:QUANT"), std::string::npos) << bad.out;
  auto missing = zs(std::string("pull hf:") + kRepo + "/nope.gguf");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("404"), std::string::npos) << missing.out;
}

TEST_F(PullEndToEnd, ServeModelPullsTheNamedModelAndAnswersWithIt) {
  ChildProcess serve({"/usr/bin/env", "ZEROSERVE_HF_ENDPOINT=" + hub_.endpoint(), "XDG_CACHE_HOME=" + dir_.file("cache"),
                      "XDG_STATE_HOME=" + dir_.file("state"), "HF_TOKEN=", "ZEROSERVE_OFFLINE=", zeroserve(), "serve",
                      "--model", std::string("hf:") + kRepo + ":Q8_0", "--listen", "127.0.0.1:0"});
  auto address = serve.wait_ready(std::chrono::seconds(120));
  ASSERT_TRUE(address.has_value());
  json body = {{"model", "tinystories-q8_0"}, {"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}};
  auto r = gateway::http_request("POST", *address, "/v1/completions", body.dump(), {}, std::chrono::seconds(120));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string text = json::parse(r->body)["choices"][0]["text"];
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(hub_.downloads(), 1);
  serve.signal(SIGTERM);
  EXPECT_EQ(serve.wait_exit(std::chrono::seconds(60)), 0);
}

TEST_F(PullEndToEnd, ServeOfflineRefusesAModelItHasNotPulled) {
  auto r = run_command("ZEROSERVE_OFFLINE= " + env_ + zeroserve() + " serve --offline --model hf:" + kRepo +
                       ":Q8_0 --listen 127.0.0.1:0 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("offline mode is on"), std::string::npos) << r.out;
  EXPECT_TRUE(hub_.paths().empty());
}

// `serve` with neither --config nor --model: the first run's model from the hub (here the
// loopback hub serves TinyStories under the first-run model's name), else the random demo.
TEST_F(PullEndToEnd, TheFirstRunServesTheHubsSmallModelAndFallsBackToTheDemoOfflineOrWhenTheHubIsUnreachable) {
  hub_.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf", tiny_stories_bytes());
  auto start = [&](std::vector<std::string> extra, std::string endpoint = "") {
    if (endpoint.empty()) endpoint = hub_.endpoint();
    std::vector<std::string> argv = {"/usr/bin/env", "ZEROSERVE_HF_ENDPOINT=" + endpoint,
                                     "XDG_CACHE_HOME=" + dir_.file("cache"), "XDG_STATE_HOME=" + dir_.file("state"),
                                     "HF_TOKEN=", "ZEROSERVE_OFFLINE=", zeroserve(), "serve", "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(argv);
  };
  auto answers = [](const std::string& address, const std::string& model) {
    json body = {{"model", model}, {"prompt", "Once upon a time"}, {"max_tokens", 4}, {"temperature", 0}};
    auto r = gateway::http_request("POST", address, "/v1/completions", body.dump(), {}, std::chrono::seconds(120));
    return r.is_ok() && r->status == 200;
  };
  {  // offline: the demo, and the hub is never asked
    auto serve = start({"--offline"});
    auto address = serve->wait_ready(std::chrono::seconds(120));
    ASSERT_TRUE(address.has_value());
    EXPECT_TRUE(answers(*address, "zeroserve-tiny"));
    EXPECT_TRUE(hub_.paths().empty());
    serve->signal(SIGTERM);
    EXPECT_EQ(serve->wait_exit(std::chrono::seconds(60)), 0);
  }
  {  // a hub that cannot be reached (nothing listens on port 1): the demo
    auto serve = start({}, "http://127.0.0.1:1");
    auto address = serve->wait_ready(std::chrono::seconds(120));
    ASSERT_TRUE(address.has_value());
    EXPECT_TRUE(answers(*address, "zeroserve-tiny"));
    serve->signal(SIGTERM);
    EXPECT_EQ(serve->wait_exit(std::chrono::seconds(60)), 0);
  }
  {  // online: pulled, then served under its name
    auto serve = start({});
    auto address = serve->wait_ready(std::chrono::seconds(120));
    ASSERT_TRUE(address.has_value());
    EXPECT_TRUE(answers(*address, "qwen2.5-0.5b-instruct-q4_k_m"));
    EXPECT_EQ(hub_.downloads(), 1);
    serve->signal(SIGTERM);
    EXPECT_EQ(serve->wait_exit(std::chrono::seconds(60)), 0);
  }
}

// The deployment's first start pulls the model in the worker; a streaming request waiting for
// that start sees the download's progress in its SSE comments, and /admin/deployments shows it.
TEST_F(PullEndToEnd, ADeploymentNamingAnHfModelPullsAtItsFirstStartAndAWaitingStreamSeesTheProgress) {
  const std::string content = tiny_stories_bytes();
  hub_.hold_after(content.size() / 2);
  setenv("ZEROSERVE_HF_ENDPOINT", hub_.endpoint().c_str(), 1);
  unsetenv("ZEROSERVE_OFFLINE");
  unsetenv("HF_TOKEN");
  Serve serve("deployments:\n  - name: stories\n    model: hf:" + std::string(kRepo) + "/" + kFile +
              "\n    slots: 1\n    ctx: 512\n    threads: 1\n");
  ASSERT_FALSE(serve.address().empty());
  EXPECT_EQ(hub_.downloads(), 0) << "nothing is pulled before the first start";

  std::string seen;
  bool released = false;
  json body = chat("stories", 8, /*stream=*/true);
  auto r = gateway::http_stream("POST", serve.address(), "/v1/chat/completions", body.dump(), {},
                                [&](std::string_view chunk) {
                                  seen.append(chunk);
                                  if (!released && seen.find(": waiting for an instance of stories") != std::string::npos &&
                                      seen.find("pulling TinyStories-656K-Q8_0.gguf: ") != std::string::npos) {
                                    auto d = gateway::http_request("GET", serve.address(), "/admin/deployments");
                                    EXPECT_TRUE(d.is_ok() && d->body.find("\"pull\"") != std::string::npos)
                                        << (d.is_ok() ? d->body : d.status().message());
                                    hub_.release();
                                    released = true;
                                  }
                                  return true;
                                },
                                std::chrono::seconds(120));
  hub_.release();
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(released) << seen;
  EXPECT_NE(seen.find("data: [DONE]"), std::string::npos) << seen;
  EXPECT_EQ(hub_.downloads(), 1);
  EXPECT_EQ(serve.stop(), 0);
}

}  // namespace
}  // namespace zs::testing
